"""Agents and their tasks: each version of an agent's spec, each task run, and every step a
task took, so a person can audit what the agent did."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from citeline.db.base import Base, utcnow


class Priority(StrEnum):
    high = "high"
    normal = "normal"
    low = "low"


# The job queue each priority runs on; workers drain them in this order.
PRIORITY_QUEUES = {Priority.high: "high", Priority.normal: "default", Priority.low: "low"}


class TaskStatus(StrEnum):
    queued = "queued"
    running = "running"
    waiting_review = "waiting_review"  # paused at a human_review node
    finished = "finished"
    failed = "failed"
    stopped = "stopped"
    rejected = "rejected"  # a reviewer rejected a step

    @property
    def ended(self) -> bool:
        return self in (
            TaskStatus.finished,
            TaskStatus.failed,
            TaskStatus.stopped,
            TaskStatus.rejected,
        )


class AgentStatus(StrEnum):
    idle = "idle"
    busy = "busy"
    error = "error"
    offline = "offline"


class Agent(Base):
    """One version of an agent: immutable once created; posting the same name adds a version."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("workspace_id", "name", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    system_prompt: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    knowledge_base_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    tools: Mapped[list[str]] = mapped_column(JSONB, default=list)
    workflow: Mapped[dict[str, Any]] = mapped_column(JSONB)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builder_session_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class AgentTask(Base):
    """One run of an agent's workflow on an input. Its job carries its state and events; this
    row carries where the walk is (`cursor`, `outputs`), the result and the review."""

    __tablename__ = "agent_tasks"
    __table_args__ = (Index("ix_agent_tasks_agent_created", "agent_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    input: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10))
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    # The walk: the next node to run, and each finished node's output.
    cursor: Mapped[str | None] = mapped_column(String(40))
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    output: Mapped[str | None] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    review: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the last decision
    rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    # The attempt of the task's job that holds one of the agent's concurrency slots.
    slot_attempt: Mapped[int | None] = mapped_column(Integer)
    retry_of: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AgentStep(Base):
    """One node a task ran: what went in and came out, its model and tool calls, citations."""

    __tablename__ = "agent_task_steps"
    __table_args__ = (UniqueConstraint("task_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agent_tasks.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))  # done, failed, waiting, approved, rejected
    attempt: Mapped[int] = mapped_column(Integer)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    model_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
