"""Assistant conversations and what happened in them: every message, every run (one reply to
one user message, a job on the queue) and every tool call, kept for good in PostgreSQL. The
live state of a run (its state, pending calls, the text so far) is in Redis (`state.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from citeline.db.base import Base, utcnow


class RunState(StrEnum):
    """Idle → Processing → Streaming → ToolExecution → Streaming → Complete, or Error → Idle;
    AwaitingApproval while a tool call waits for a person (its job suspended, no worker held)."""

    idle = "idle"
    processing = "processing"
    streaming = "streaming"
    tool_execution = "tool_execution"
    awaiting_approval = "awaiting_approval"
    complete = "complete"
    error = "error"
    cancelled = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (RunState.complete, RunState.error, RunState.cancelled)


class AssistantConversation(Base):
    __tablename__ = "assistant_conversations"
    __table_args__ = (Index("ix_assistant_conversations_ws", "workspace_id", "updated_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="RESTRICT")
    )
    owner: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(200))
    knowledge_base_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    tools: Mapped[list[str] | None] = mapped_column(JSONB)  # allowed names; None: all
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AssistantMessage(Base):
    """A user message or the assistant's final reply (with its citations)."""

    __tablename__ = "assistant_messages"
    __table_args__ = (Index("ix_assistant_messages_conv", "conversation_id", "ordinal"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE")
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column()
    ordinal: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AssistantRun(Base):
    """One reply being written, by one job; its final state and usage."""

    __tablename__ = "assistant_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[uuid.UUID] = mapped_column()  # the user message it answers
    state: Mapped[str] = mapped_column(String(20), default=RunState.idle.value)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # What the next attempt needs after a pause for approval (`loop.Checkpoint`); None
    # until the run first pauses.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssistantToolCall(Base):
    """Every tool call a run made or was refused: arguments, outcome, result and timing."""

    __tablename__ = "assistant_tool_calls"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assistant_runs.id", ondelete="CASCADE"), index=True
    )
    call_id: Mapped[str] = mapped_column(String(100))  # the model's id for the call
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSONB)
    policy: Mapped[str] = mapped_column(String(10))  # allow | ask
    # pending (awaiting approval) | approved | denied | done | error | invalid | limited |
    # cancelled (the run was cancelled while it waited)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(default=False)
    truncated: Mapped[bool] = mapped_column(default=False)
    duration_ms: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
