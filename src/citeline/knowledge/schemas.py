"""What the knowledge API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.knowledge.models import Document, KnowledgeBase


class KnowledgeBaseIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class KnowledgeBaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    chunk_tokens: int
    chunk_overlap: int
    chunk_count: int
    created_at: datetime
    document_counts: dict[str, int] | None = Field(
        default=None,
        description="documents by status (queued, processing, ready, failed); in listings only",
    )

    @classmethod
    def of(
        cls, kb: KnowledgeBase, document_counts: dict[str, int] | None = None
    ) -> KnowledgeBaseOut:
        out = cls.model_validate(kb)
        out.document_counts = document_counts
        return out


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseOut]


class FormatList(BaseModel):
    suffixes: list[str] = Field(description="File name suffixes ingestion reads, e.g. .pdf")


class ReindexOut(BaseModel):
    job_ids: list[uuid.UUID]


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    source: str
    filename: str
    media_type: str
    title: str | None
    status: str
    error: str | None
    job_id: uuid.UUID | None
    size_bytes: int | None
    chunk_count: int
    content_hash: str | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        return cls.model_validate(document)


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class UploadResult(BaseModel):
    source: str
    status: str = Field(description="queued, unchanged or rejected")
    document_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    error: str | None = None


class UploadResponse(BaseModel):
    documents: list[UploadResult]
    job_ids: list[uuid.UUID]


class SearchHit(BaseModel):
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str | None
    source: str | None
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str
    score: float
    ranks: dict[str, int | None]
    scores: dict[str, float | None]


class SearchResponse(BaseModel):
    hits: list[SearchHit]


class PreviewChunk(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ordinal: int
    start: int = Field(description="Offsets in the document's extracted text")
    end: int
    heading_path: list[str]
    page: int | None


class DocumentPreview(BaseModel):
    """A document as it was indexed: its extracted text, where its pages start, and the
    chunks that search and answers cite."""

    document: DocumentOut
    text: str
    truncated: bool = Field(description="The text is cut; the document is longer")
    page_starts: list[int] | None
    chunks: list[PreviewChunk]
