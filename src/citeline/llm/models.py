"""The model registry: versions of named models, aliases that route between them, and the
record of every generation (who, which version, how fast, how many tokens, what happened)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
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


class ProviderKind(StrEnum):
    local = "local"
    openai = "openai"
    anthropic = "anthropic"


class Outcome(StrEnum):
    ok = "ok"
    error = "error"
    cancelled = "cancelled"


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(20))
    # A bundled model name, a GGUF path or "default" (CITELINE_LLM_MODEL) for the local
    # provider; the provider's model id for a remote one.
    model: Mapped[str] = mapped_column(String(500))
    base_url: Mapped[str | None] = mapped_column(String(500))
    credential: Mapped[str | None] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    prompt_template: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class ModelAlias(Base):
    __tablename__ = "model_aliases"

    # "" is shared by every workspace; a workspace's own alias of the same name wins there.
    workspace_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # [{"version_id": "...", "weight": 0.7}, ...]: weights need not sum to one.
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    fallback_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_alias_created_at", "alias", "created_at"),
        Index("ix_generations_version_id", "version_id"),
        Index("ix_generations_workspace_alias_created_at", "workspace_id", "alias", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    alias: Mapped[str | None] = mapped_column(String(100))
    workspace_id: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    version_label: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(64))
    conversation: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    fallback: Mapped[bool] = mapped_column(default=False)
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float)
    first_token_ms: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)


class TokenUsage(Base):
    """Tokens per subject (user), model and day: what quotas are checked against."""

    __tablename__ = "token_usage"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
