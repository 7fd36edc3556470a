"""The `answers.answer` job: the pipeline run by a worker, its events on the job's stream."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from citeline.answers.pipeline import AnswerDeps, AnswerOptions, answer
from citeline.db.base import utcnow
from citeline.jobs.context import JobContext
from citeline.jobs.models import Job
from citeline.jobs.registry import JobKind

ANSWER_KIND = "answers.answer"


def answer_job(context: JobContext[AnswerDeps]) -> dict[str, Any]:
    args = context.args
    with context.sessions() as session:
        job = session.get_one(Job, context.job_id)
        started = job.started_at or utcnow()
        queue_ms = round((started - job.created_at).total_seconds() * 1000, 1)

    milestones = {"retrieval": (0.2, "passages retrieved"), "token": (0.4, "writing")}

    def emit(type_: str, data: Mapping[str, Any]) -> None:
        milestone = milestones.pop(type_, None)
        if milestone is not None:
            context.progress(*milestone)
        if type_ == "complete":
            context.progress(0.95, "verified")
        context.emit(type_, data)

    conversation = args.get("conversation_id")
    return answer(
        context.services,
        str(args["query"]),
        uuid.UUID(str(args["knowledge_base_id"])),
        emit=emit,
        conversation_id=uuid.UUID(conversation) if conversation else None,
        options=AnswerOptions.of(args.get("options")),
        owner=context.owner,
        job_id=context.job_id,
        queue_ms=queue_ms,
        lease=context.lease,
    )


ANSWER = JobKind(ANSWER_KIND, answer_job, queue="high", timeout_seconds=900, max_attempts=1)
