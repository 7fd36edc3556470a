"""What the job API returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

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
    parent_id: uuid.UUID | None = None  # the job waiting for this one
    group_id: uuid.UUID | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if isinstance(value, Job):
            return {
                **{name: getattr(value, name) for name in cls.model_fields if hasattr(value, name)},
                "has_result": value.result is not None,
            }
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def queue_seconds(self) -> float | None:
        if self.started_at and self.enqueued_at:
            return max(0.0, (self.started_at - self.enqueued_at).total_seconds())
        return None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def run_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None

    @classmethod
    def of(cls, job: Job, labels: dict[str, str] | None = None) -> JobOut:
        """The job, its owner shown as `labels` names them for the reader."""
        out = cls.model_validate(job)
        if job.owner is not None and labels:
            out.owner = labels.get(job.owner, job.owner)
        return out


class JobList(BaseModel):
    jobs: list[JobOut]


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    total: int
    ended: int
    failed: int
    stopped: int
    progress: float
    follow_up_id: uuid.UUID | None
    follow_up_state: str | None
    cancelled: bool


class ChildrenOut(BaseModel):
    """What a waiting job fanned out: its groups and every child and follow-up."""

    groups: list[GroupOut]
    jobs: list[JobOut]


class JobResult(BaseModel):
    job_id: uuid.UUID
    result: Any
