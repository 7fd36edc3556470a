"""Provider-neutral chat messages, requests and stream events.

Providers translate these to and from their wire formats; nothing above the providers sees a
vendor type. The shapes follow OpenAI's chat format closely because most servers speak it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class Role(StrEnum):
    system = "system"
    user = "user"
    assistant = "assistant"
    tool = "tool"


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # on a `tool` message: the call it answers

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role=Role.system, content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role=Role.user, content=content)


class ToolSpec(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ChatRequest(BaseModel):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1, le=32768)] = 512
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.2
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    json_schema: dict[str, Any] | None = None  # constrain the output to JSON of this shape
    tools: list[ToolSpec] = Field(default_factory=list)


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class FinishReason(StrEnum):
    stop = "stop"
    length = "length"
    tool_calls = "tool_calls"
    cancelled = "cancelled"


class TextDelta(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolCallEvent(BaseModel):
    type: Literal["tool_call"] = "tool_call"
    call: ToolCall


class Finish(BaseModel):
    type: Literal["finish"] = "finish"
    reason: FinishReason
    usage: Usage


ChatEvent = Annotated[TextDelta | ToolCallEvent | Finish, Field(discriminator="type")]


class ChatResult(BaseModel):
    text: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason
    usage: Usage

    @classmethod
    def collect(cls, events: list[TextDelta | ToolCallEvent | Finish]) -> ChatResult:
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
        finish = next((e for e in reversed(events) if isinstance(e, Finish)), None)
        if finish is None:
            return cls(
                text=text, tool_calls=calls, finish_reason=FinishReason.cancelled, usage=Usage()
            )
        return cls(text=text, tool_calls=calls, finish_reason=finish.reason, usage=finish.usage)
