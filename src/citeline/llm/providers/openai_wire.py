"""Citeline messages in OpenAI's chat-completions wire format, and stream chunks back.

Both the local llama.cpp server and OpenAI-compatible servers speak this format, so the two
providers share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from citeline.llm.messages import (
    ChatEvent,
    ChatRequest,
    Finish,
    FinishReason,
    Message,
    Role,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
)


def message_body(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.role is Role.assistant and message.tool_calls:
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.role is Role.tool:
        body["tool_call_id"] = message.tool_call_id
    return body


def request_body(model: str | None, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [message_body(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": stream,
    }
    if model is not None:
        body["model"] = model
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = request.stop
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
        }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
    return body


_FINISH = {
    "stop": FinishReason.stop,
    "length": FinishReason.length,
    "tool_calls": FinishReason.tool_calls,
    "function_call": FinishReason.tool_calls,
}


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class ChunkReader:
    """Turns `chat.completion.chunk` dicts into events; tool calls arrive in pieces and are
    emitted whole when the reply ends."""

    provider: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)

    def feed(self, chunk: dict[str, Any]) -> Iterator[ChatEvent]:
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield TextDelta(text=delta["content"])
            for piece in delta.get("tool_calls") or ():
                call = self.calls.setdefault(int(piece.get("index") or 0), _PartialCall())
                call.id = piece.get("id") or call.id
                function = piece.get("function") or {}
                call.name = function.get("name") or call.name
                call.arguments += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = _FINISH.get(choice["finish_reason"], FinishReason.stop)

    def finish(self) -> Iterator[ChatEvent]:
        for index, call in sorted(self.calls.items()):
            yield ToolCallEvent(
                call=ToolCall(
                    id=call.id or f"call_{index}",
                    name=call.name,
                    arguments=parse_arguments(call.arguments),
                )
            )
        reason = self.finish_reason or FinishReason.stop
        if self.calls:
            reason = FinishReason.tool_calls
        yield Finish(reason=reason, usage=self.usage or Usage())


def usage_from(usage: dict[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool-call arguments as a dict; text that is not a JSON object is kept, not dropped."""
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}
