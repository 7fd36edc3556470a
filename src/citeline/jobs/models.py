"""The job record that mirrors each RQ job, and the ordered events it emitted."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from citeline.db.base import Base, utcnow


class JobState(StrEnum):
    queued = "queued"
    scheduled = "scheduled"  # waiting for a retry's backoff to pass
    started = "started"
    waiting = "waiting"  # fanned out: ends when its children's follow-up ends (jobs.fanout)
    suspended = "suspended"  # paused by its function until someone resumes it (a person's review)
    finished = "finished"
    failed = "failed"
    stopped = "stopped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.finished, JobState.failed, JobState.stopped})
ACTIVE_STATES = frozenset(
    {JobState.queued, JobState.scheduled, JobState.started, JobState.waiting, JobState.suspended}
)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300))
    queue: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(20), default=JobState.queued.value)
    owner: Mapped[str | None] = mapped_column(String(200))
    workspace_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JSONB)
    # The W3C trace context of whoever enqueued the job, so its run joins their trace.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # Fan-out: the job that waits for this one (a child or the follow-up of its group), and
    # the group it is a child of.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_groups.id", ondelete="CASCADE", use_alter=True), index=True
    )
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_kind", "kind"),
        Index("ix_jobs_workspace", "workspace_id"),
    )


class JobGroup(Base):
    """Children a waiting job fanned out, counted as they end, and the follow-up job that is
    recorded, once, in the same statement as the last child's end."""

    __tablename__ = "job_groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    parent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(Integer)
    ended: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    stopped: Mapped[int] = mapped_column(Integer, default=0)
    on_failure: Mapped[str] = mapped_column(String(16), default="continue")  # or "cancel"
    follow_up_id: Mapped[uuid.UUID] = mapped_column()  # the follow-up's job id, chosen upfront
    follow_up_kind: Mapped[str] = mapped_column(String(100))
    follow_up_target: Mapped[str] = mapped_column(String(300))
    follow_up_queue: Mapped[str] = mapped_column(String(50))
    follow_up_args: Mapped[dict[str, Any]] = mapped_column(JSONB)
    follow_up_attempts: Mapped[int] = mapped_column(Integer)
    follow_up_timeout: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobEvent(Base):
    __tablename__ = "job_events"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
