"""Reports and their sections: what was asked, the outline, each section's research and draft,
and the assembled, cited document; and the exports written from it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
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


class ReportStatus(StrEnum):
    queued = "queued"
    started = "started"
    finished = "finished"  # every section grounded
    partial = "partial"  # some sections could not be grounded or failed
    not_found = "not_found"  # the knowledge bases say nothing about the topic
    failed = "failed"
    stopped = "stopped"

    @property
    def ended(self) -> bool:
        return self not in (ReportStatus.queued, ReportStatus.started)


class SectionStatus(StrEnum):
    queued = "queued"
    started = "started"
    finished = "finished"
    not_found = "not_found"  # nothing retrieved supported a sentence
    failed = "failed"
    stopped = "stopped"

    @property
    def needs_retry(self) -> bool:
        return self in (SectionStatus.failed, SectionStatus.stopped, SectionStatus.not_found)


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # RESTRICT: a workspace goes only once its reports have been deleted.
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="RESTRICT")
    )
    owner: Mapped[str | None] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text, default="")
    knowledge_base_ids: Mapped[list[str]] = mapped_column(JSONB)
    model: Mapped[str] = mapped_column(String(200))
    target_sections: Mapped[int] = mapped_column(Integer)
    fixed_outline: Mapped[bool] = mapped_column(Boolean, default=False)  # the user's sections
    status: Mapped[str] = mapped_column(String(20), default=ReportStatus.queued.value)
    title: Mapped[str | None] = mapped_column(Text)
    # The current run: the job whose events are the report's, and whose cancel stops it.
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the assembled report
    closest: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # when not_found
    error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped at each assembly
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_section_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ReportSection(Base):
    __tablename__ = "report_sections"
    __table_args__ = (UniqueConstraint("report_id", "ordinal"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default=SectionStatus.queued.value)
    job_id: Mapped[uuid.UUID | None] = mapped_column()
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # Sentences with their local citation numbers, and the citations as data: passage ids
    # and spans (`citeline.answers` citations).
    sentences: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    draft: Mapped[str | None] = mapped_column(Text)  # the model's text before verification
    passages: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)  # retrieved
    model_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    dropped: Mapped[list[str]] = mapped_column(JSONB, default=list)  # claims no span supported
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReportExport(Base):
    """An export written once to export storage, for one version of the report."""

    __tablename__ = "report_exports"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)
    storage_key: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
