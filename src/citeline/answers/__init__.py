"""Grounded answers: retrieve, pack, generate, and cite only what the passages support.

Reports and the assistant reuse the parts: passages, packing, and the citation verifier."""

from citeline.answers.citations import Citation, SentenceSupport, Verified, verify
from citeline.answers.job import ANSWER
from citeline.answers.passages import Passage, from_hits, header, pack
from citeline.answers.pipeline import AnswerDeps, AnswerOptions, answer
from citeline.answers.service import AnswerService
from citeline.answers.text import content_words, strip_markers

JOB_KINDS = (ANSWER,)

__all__ = [
    "JOB_KINDS",
    "AnswerDeps",
    "AnswerOptions",
    "AnswerService",
    "Citation",
    "Passage",
    "SentenceSupport",
    "Verified",
    "answer",
    "content_words",
    "from_hits",
    "header",
    "pack",
    "strip_markers",
    "verify",
]
