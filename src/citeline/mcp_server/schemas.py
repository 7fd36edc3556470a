"""What Citeline's MCP tools return: small, flat models a language model can read, each the
tool's structured content (and its output schema)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


class KnowledgeBaseInfo(BaseModel):
    id: uuid.UUID = Field(description="Pass this (or the name) to the other tools")
    name: str
    description: str
    documents: int = Field(description="Documents ready to search")
    passages: int = Field(description="Indexed passages")


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseInfo]


class DocumentInfo(BaseModel):
    id: uuid.UUID
    title: str | None
    source: str = Field(description="The file name or path it was uploaded as")
    status: str = Field(description="queued, started, ready or failed; only ready is searched")
    passages: int
    error: str | None = None


class DocumentList(BaseModel):
    knowledge_base_id: uuid.UUID
    documents: list[DocumentInfo]


class Passage(BaseModel):
    """A stored passage; `start`/`end` are offsets in its document's extracted text."""

    passage_id: uuid.UUID
    document_id: uuid.UUID
    title: str | None
    source: str | None
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str
    score: float


class SearchResult(BaseModel):
    knowledge_base_id: uuid.UUID
    query: str
    passages: list[Passage]


class Citation(BaseModel):
    """The exact span of a stored passage that supports the sentences marked `[marker]`."""

    marker: int
    passage_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    source: str
    page: int | None
    start: int = Field(description="Offset of the quoted span in the document's text")
    end: int
    text: str = Field(description="The quoted span")


class Answer(BaseModel):
    status: Literal["answered", "not_found"] = Field(
        description="not_found: the knowledge base holds nothing that answers the question"
    )
    answer: str = Field(description="The answer; each [n] marker refers to a citation")
    citations: list[Citation]
    knowledge_base_id: uuid.UUID
    job_id: uuid.UUID
    reason: str | None = Field(default=None, description="Why nothing was found")


class ReportStarted(BaseModel):
    report_id: uuid.UUID
    job_id: uuid.UUID
    status: str
    url: str = Field(description="The report's page in Citeline's web UI")
    api_url: str = Field(description="GET it for the report's status and, once done, its text")
