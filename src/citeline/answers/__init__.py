"""Grounded answers: retrieve, pack, generate, and cite only what the passages support."""

from citeline.answers.job import ANSWER
from citeline.answers.pipeline import AnswerDeps, AnswerOptions, answer
from citeline.answers.service import AnswerService

JOB_KINDS = (ANSWER,)

__all__ = ["JOB_KINDS", "AnswerDeps", "AnswerOptions", "AnswerService", "answer"]
