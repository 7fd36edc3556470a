"""The permanent record of a builder session: what was collected, the whole conversation and
the outputs. Its live state lives in Redis while the session is in use (see `state`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from citeline.agent_builder.stages import SessionStatus, Stage
from citeline.db.base import Base, utcnow


class BuilderSession(Base):
    __tablename__ = "builder_sessions"
    __table_args__ = (
        Index("ix_builder_sessions_workspace_created", "workspace_id", "created_at"),
        Index("ix_builder_sessions_status_active", "status", "last_active_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    owner: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=SessionStatus.active.value)
    stage: Mapped[str] = mapped_column(String(20), default=Stage.initial.value)
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    suggested_tools: Mapped[list[str]] = mapped_column(JSONB, default=list)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    final_prompt: Mapped[str | None] = mapped_column(Text)
    workflow_json: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tools_config: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
