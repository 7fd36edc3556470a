"""What the answer API accepts and returns: a question, the job that answers it, and the
answer with its citations, each pointing at a stored passage's exact characters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citeline.llm import Usage

CITATION_EXAMPLE: dict[str, Any] = {
    "marker": 1,
    "passage": 1,
    "chunk_id": "8a4c7c52-2a6a-4b8e-9a37-56c0f26f5d36",
    "document_id": "0d3f1b9e-6c3c-4b43-8f1e-2d6c7a1e9b10",
    "title": "Upgrading Debian",
    "source": "ch-uptodate.md",
    "page": None,
    "start": 1042,
    "end": 1131,
    "text": "To upgrade to a new release, change the release name in sources.list.",
    "support": 0.8731,
}


class AskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(default=None, ge=1, le=50, description="Passages to retrieve")
    model: str | None = Field(default=None, description="Model alias or name[@N]")
    context_tokens: int | None = Field(default=None, ge=100, le=32000)
    max_tokens: int | None = Field(default=None, ge=16, le=4096)
    min_relevance: float | None = Field(default=None, ge=-1, le=1)
    relevance_margin: float | None = Field(
        default=None, ge=0, le=2, description="Read passages this close to the best one"
    )


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="The question")
    knowledge_base: str | None = Field(
        default=None,
        description="Knowledge base id or name; default: the workspace's default knowledge base "
        "(CITELINE_DEFAULT_KNOWLEDGE_BASE, or the only one)",
    )
    conversation_id: uuid.UUID | None = Field(
        default=None, description="Continue this conversation (a follow-up)"
    )
    options: AskOptions = Field(default_factory=AskOptions)


class AskOut(BaseModel):
    job_id: uuid.UUID
    conversation_id: uuid.UUID | None
    status_url: str
    result_url: str
    events_url: str


class CitationOut(BaseModel):
    """A citation: the exact span of a stored chunk that supports a sentence of the answer.
    `start`/`end` are offsets in the document's extracted text; `text` is that span."""

    model_config = ConfigDict(json_schema_extra={"examples": [dict(CITATION_EXAMPLE)]})

    marker: int = Field(description="The [n] marker in the answer")
    passage: int = Field(description="Which passage the model read it in (1-based)")
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    source: str
    page: int | None
    start: int
    end: int
    text: str
    support: float = Field(description="How well the span supports the sentence (0-1)")


class SentenceOut(BaseModel):
    text: str
    start: int = Field(description="Offsets in the answer")
    end: int
    claim: bool = Field(description="Whether the sentence states something to be cited")
    markers: list[int]
    support: float | None
    unsupported: bool = Field(description="A claim no passage supports")
    model_markers: list[int] = Field(description="What the model itself cited")
    dropped: Literal["unsupported", "repeated", "meta"] | None = Field(
        default=None, description="Why the answer leaves this drafted sentence out"
    )


class PassageOut(BaseModel):
    number: int
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    source: str
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str
    score: float
    relevance: float | None


class TimingsOut(BaseModel):
    rewrite_ms: float | None = None
    retrieval_ms: float | None = None
    preview_ms: float | None = None
    first_token_ms: float | None = None
    first_sentence_ms: float | None = None
    prompt_ms: float | None = None
    generation_ms: float | None = None
    verification_ms: float | None = None
    total_ms: float | None = None
    queue_ms: float | None = None


class AnswerOut(BaseModel):
    """A finished answer. Keys that do not apply are left out: `draft` and the citations only
    exist for an answer, `reason` only for `not_found`, `model` and `usage` only when a model
    was asked, `turn` only in a conversation."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "How do I upgrade to a new release?",
                    "search_query": "How do I upgrade to a new release?",
                    "knowledge_base_id": "5b8e0a1c-8a2d-4d36-9a0f-3f5d2c1b7e44",
                    "conversation_id": None,
                    "model": "local@1",
                    "usage": {"input_tokens": 612, "output_tokens": 41, "cached_tokens": 0},
                    "status": "answered",
                    "answer": "Change the release name in sources.list [1].",
                    "result": "Change the release name in sources.list [1].",
                    "draft": "Change the release name in sources.list [1].",
                    "citations": [CITATION_EXAMPLE],
                    "sentences": [],
                    "coverage": 1.0,
                    "passages": [],
                    "timings": {"total_ms": 9312.4},
                }
            ]
        }
    )

    question: str
    search_query: str
    knowledge_base_id: uuid.UUID
    conversation_id: uuid.UUID | None
    status: Literal["answered", "not_found"]
    answer: str
    result: str = Field(description="The answer text (the asynchronous RAG contract's field)")
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    dropped: list[SentenceOut] = Field(
        default_factory=list, description="Drafted sentences the verified answer leaves out"
    )
    coverage: float | None = Field(description="Share of drafted claims a passage supports")
    passages: list[PassageOut] = Field(description="What the model read (or the closest)")
    set_aside: list[int] = Field(
        default_factory=list,
        description="Retrieved passages (numbers of the retrieval event) not read: about "
        "something other than the question",
    )
    timings: TimingsOut
    model: str | None = None
    usage: Usage | None = None
    draft: str | None = Field(default=None, description="The model's text before verification")
    reason: str | None = None
    turn: int | None = None


class AnswerStatusOut(BaseModel):
    job_id: uuid.UUID
    status: Literal["queued", "started", "finished", "failed", "stopped"]
    progress: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timings: TimingsOut | None


class TurnOut(BaseModel):
    ordinal: int
    question: str
    search_query: str
    status: str
    answer: str
    citations: list[CitationOut]
    job_id: uuid.UUID | None
    created_at: datetime


class ConversationOut(BaseModel):
    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    title: str
    created_at: datetime
    turns: list[TurnOut]


class ConversationSummary(BaseModel):
    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    title: str
    turn_count: int
    created_at: datetime
    updated_at: datetime


class ConversationList(BaseModel):
    conversations: list[ConversationSummary]


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
