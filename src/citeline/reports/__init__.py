"""Cited reports: planning, section research, assembly, exports."""

from citeline.reports.jobs import JOB_KINDS, ReportDeps
from citeline.reports.service import ReportService

__all__ = ["JOB_KINDS", "ReportDeps", "ReportService"]
