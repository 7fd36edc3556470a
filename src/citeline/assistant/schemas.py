"""What the assistant API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The API refuses longer messages with a clear 413 (CITELINE_ASSISTANT_MAX_MESSAGE_CHARS);
# this bound only keeps the parser's work finite.
MAX_CONTENT = 1_000_000


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200)
    model: str = Field(default="assistant", max_length=200, description="Model alias or name")
    knowledge_bases: list[str] = Field(
        default_factory=list, max_length=20, description="Knowledge base ids or names to search"
    )
    tools: list[str] | None = Field(
        default=None, max_length=200, description="Allowed tool names; default: every tool"
    )
    system_prompt: str = Field(default="", max_length=8000)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_CONTENT)


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ordinal: int
    role: str
    content: str
    run_id: uuid.UUID | None
    citations: list[dict[str, Any]] = Field(
        description="kind `document` (a verified span) or `tool` (a call id and its quote)"
    )
    created_at: datetime


class ConversationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    model: str
    knowledge_base_ids: list[str]
    tools: list[str] | None
    system_prompt: str
    created_at: datetime
    updated_at: datetime


class ConversationOut(ConversationSummary):
    messages: list[MessageOut]
    state: str = Field(description="The last run's state, or idle")
    last_run_id: uuid.UUID | None


class ConversationList(BaseModel):
    conversations: list[ConversationSummary]


class RunCreated(BaseModel):
    run_id: uuid.UUID
    job_id: uuid.UUID
    message_id: uuid.UUID
    status_url: str
    events_url: str


class ToolCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: str
    step: int
    name: str
    arguments: dict[str, Any]
    policy: str
    status: str
    result: str | None
    is_error: bool
    truncated: bool
    duration_ms: float | None


class RunOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    job_id: uuid.UUID | None
    state: str
    live: bool = Field(description="Whether the state came from the live session in Redis")
    pending: list[dict[str, Any]] = Field(description="Tool calls waiting for approval")
    buffer: str = Field(description="The last part of the text written so far")
    steps: int
    input_tokens: int
    output_tokens: int
    error: str | None
    tool_calls: list[ToolCallOut]
    created_at: datetime
    finished_at: datetime | None
