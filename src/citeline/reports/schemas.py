"""What the report API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.reports.outline import MAX_SECTIONS

MAX_TOPIC = 500


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1, max_length=MAX_TOPIC, description="What the report is about")
    knowledge_bases: list[str] = Field(
        min_length=1, max_length=20, description="Knowledge base ids or names to research"
    )
    outline: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Section titles you fix (the model then only writes their questions)",
    )
    sections: int = Field(default=5, ge=1, le=MAX_SECTIONS, description="Target count")
    instructions: str = Field(default="", max_length=2000)
    model: str = Field(default="report", max_length=200, description="Model alias or name[@N]")


class ReportCreated(BaseModel):
    report_id: uuid.UUID
    job_id: uuid.UUID
    status_url: str
    events_url: str


class ModelCallOut(BaseModel):
    purpose: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float


class SectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ordinal: int
    title: str
    questions: list[str]
    status: str
    progress: float
    job_id: uuid.UUID | None
    error: str | None
    attempts: int
    sentences: list[dict[str, Any]] = Field(description="Verified sentences, local markers")
    citations: list[dict[str, Any]] = Field(description="Local citations: passage ids, spans")
    dropped: list[str] = Field(description="Drafted claims no retrieved span supported")
    started_at: datetime | None
    finished_at: datetime | None


class SectionAudit(SectionOut):
    """A section with what it was written from: every passage it retrieved and every model
    call, so a reader can audit how it was written."""

    draft: str | None
    passages: list[dict[str, Any]]
    model_calls: list[ModelCallOut]


class ReportOut(BaseModel):
    id: uuid.UUID
    topic: str
    instructions: str
    knowledge_base_ids: list[uuid.UUID]
    model: str
    status: str
    title: str | None
    job_id: uuid.UUID | None
    error: str | None
    progress: float
    outline: list[dict[str, Any]] = Field(description="Sections with their questions")
    sections: list[SectionOut]
    document: dict[str, Any] | None = Field(description="The assembled report, when there is one")
    closest: list[dict[str, Any]] | None = Field(description="When not_found: closest passages")
    created_at: datetime
    started_at: datetime | None
    first_section_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, float | None]


class ReportSummary(BaseModel):
    id: uuid.UUID
    topic: str
    title: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None


class ReportList(BaseModel):
    reports: list[ReportSummary]


class ReportAudit(BaseModel):
    report_id: uuid.UUID
    sections: list[SectionAudit]
