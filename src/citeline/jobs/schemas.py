"""What the job API returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from citeline.jobs.models import Job


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    queue: str
    state: str
    owner: str | None
    args: dict[str, Any]
    progress: float
    progress_message: str | None
    attempt: int
    max_attempts: int
    error: str | None
    has_result: bool
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    queue_seconds: float | None
    run_seconds: float | None

    @classmethod
    def of(cls, job: Job, labels: dict[str, str] | None = None) -> JobOut:
        """The job, its owner shown as `labels` names them for the reader."""
        queue_seconds = run_seconds = None
        if job.started_at and job.enqueued_at:
            queue_seconds = max(0.0, (job.started_at - job.enqueued_at).total_seconds())
        if job.started_at and job.finished_at:
            run_seconds = max(0.0, (job.finished_at - job.started_at).total_seconds())
        return cls(
            id=job.id,
            kind=job.kind,
            queue=job.queue,
            state=job.state,
            owner=(labels or {}).get(job.owner, job.owner) if job.owner else None,
            args=job.args,
            progress=job.progress,
            progress_message=job.progress_message,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            error=job.error,
            has_result=job.result is not None,
            created_at=job.created_at,
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
        )


class JobList(BaseModel):
    jobs: list[JobOut]


class JobResult(BaseModel):
    job_id: uuid.UUID
    result: Any
