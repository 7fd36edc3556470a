"""Grounded answers: retrieve, pack, generate, and cite only what the passages support."""

from citeline.answers.job import ANSWER

JOB_KINDS = (ANSWER,)

__all__ = ["JOB_KINDS"]
