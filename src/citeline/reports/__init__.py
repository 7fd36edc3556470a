"""Cited reports: planning, section research, assembly, exports."""
