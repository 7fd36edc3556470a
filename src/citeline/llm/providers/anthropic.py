"""The Anthropic provider: Claude through the official `anthropic` SDK's Messages API.

Citeline messages become Messages-API turns (system text apart, tool calls as `tool_use`
blocks, tool results as `tool_result` blocks in a user turn); the raw stream events become
Citeline events. The SDK does not retry (`citeline.llm.resilience` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2  # the SDK's HTTP client; its errors escape the SDK while a stream is read
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    TextBlock,
    ToolUseBlock,
)
from anthropic.types import TextDelta as AnthropicTextDelta

from citeline.errors import CitelineError, InvalidInput, ProviderError
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
from citeline.llm.providers.base import Lease
from citeline.llm.providers.http_errors import connection_failed, status_error, timed_out
from citeline.llm.providers.openai_wire import parse_arguments

ANTHROPIC_URL = "https://api.anthropic.com"
_NO_KEY = "none"  # without a key the SDK reads ANTHROPIC_API_KEY from the environment
_FINISH = {
    "end_turn": FinishReason.stop,
    "stop_sequence": FinishReason.stop,
    "tool_use": FinishReason.tool_calls,
    "max_tokens": FinishReason.length,
    "model_context_window_exceeded": FinishReason.length,
}


class AnthropicProvider:
    def __init__(
        self, api_key: str | None, *, base_url: str | None = None, timeout_seconds: float
    ) -> None:
        url = base_url or ANTHROPIC_URL
        self.endpoint = f"anthropic:{url}"
        self.timeout_seconds = timeout_seconds
        # `timeout` bounds connecting and each wait for the next bytes, not the whole reply.
        self.client = anthropic.Anthropic(
            api_key=api_key or _NO_KEY, base_url=url, timeout=timeout_seconds, max_retries=0
        )

    def stream(
        self, model: str, request: ChatRequest, *, lease: Lease | None = None
    ) -> Iterator[ChatEvent]:
        del lease  # nothing here stops the caller's heartbeat
        params = request_params(model, request)
        reader = _EventReader()
        try:
            with self.client.messages.create(**params, stream=True) as events:
                for event in events:
                    yield from reader.feed(event)
        except anthropic.APIError as exc:
            raise self._error(exc) from exc
        except httpx2.TimeoutException as exc:
            raise timed_out(self.endpoint, self.timeout_seconds) from exc
        except httpx2.TransportError as exc:
            raise connection_failed(self.endpoint, exc) from exc
        if reader.stop_reason is None:
            raise ProviderError(
                "the stream ended before the reply finished", provider=self.endpoint, retryable=True
            )
        yield from reader.finish()

    def close(self) -> None:
        self.client.close()

    def _error(self, exc: anthropic.APIError) -> CitelineError:
        if isinstance(exc, anthropic.APITimeoutError):
            return timed_out(self.endpoint, self.timeout_seconds)
        if isinstance(exc, anthropic.APIConnectionError):
            return connection_failed(self.endpoint, exc.__cause__ or exc)
        if not isinstance(exc, anthropic.APIStatusError):
            return ProviderError(exc.message, provider=self.endpoint)
        detail = exc.api_message or exc.message
        status = exc.status_code
        if status < 400:
            # An `error` event inside a 200 stream (typically an overload): the request was
            # accepted and the server failed while generating.
            return ProviderError(detail, provider=self.endpoint, retryable=True)
        return status_error(self.endpoint, status, detail)


def request_params(model: str, request: ChatRequest) -> dict[str, Any]:
    """The Messages-API parameters for a request.

    `temperature`, `top_p` and `seed` are dropped: the API version this SDK speaks has no
    sampling parameters and answers 400 to any of them.
    """
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": _turns(request.messages),
    }
    system = "\n\n".join(m.content for m in request.messages if m.role is Role.system)
    if system:
        params["system"] = system
    if request.stop:
        params["stop_sequences"] = request.stop
    if request.json_schema is not None:
        # Structured outputs: the API constrains decoding to the schema (on models that
        # support it; others answer 400).
        params["output_config"] = {"format": {"type": "json_schema", "schema": request.json_schema}}
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return params


def _turns(messages: list[Message]) -> list[dict[str, Any]]:
    """User and assistant turns; consecutive blocks of one role share a turn, so the results
    of parallel tool calls arrive together as the API requires."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.system:
            continue
        role = "assistant" if message.role is Role.assistant else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role is Role.tool:
        if not message.tool_call_id:
            raise InvalidInput("a tool message needs the tool_call_id it answers", field="messages")
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:  # the API refuses empty text blocks
        blocks.append({"type": "text", "text": message.content})
    if message.role is Role.assistant:
        blocks += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in message.tool_calls
        ]
    return blocks


@dataclass
class _PartialCall:
    id: str
    name: str
    arguments: str = ""


@dataclass
class _EventReader:
    """Turns raw stream events into Citeline events; a tool call is emitted when its block
    ends."""

    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)

    def feed(self, event: RawMessageStreamEvent) -> Iterator[ChatEvent]:
        if isinstance(event, RawMessageStartEvent):
            usage = event.message.usage
            self.usage = Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cache_read_input_tokens or 0,
            )
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, ToolUseBlock):
                self.calls[event.index] = _PartialCall(id=block.id, name=block.name)
            elif isinstance(block, TextBlock) and block.text:
                yield TextDelta(text=block.text)
        elif isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if isinstance(delta, AnthropicTextDelta) and delta.text:
                yield TextDelta(text=delta.text)
            elif isinstance(delta, InputJSONDelta) and event.index in self.calls:
                self.calls[event.index].arguments += delta.partial_json
        elif isinstance(event, RawContentBlockStopEvent):
            call = self.calls.pop(event.index, None)
            if call is not None:
                yield ToolCallEvent(
                    call=ToolCall(
                        id=call.id, name=call.name, arguments=parse_arguments(call.arguments)
                    )
                )
        elif isinstance(event, RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason or "end_turn"
            totals = event.usage  # cumulative counts
            self.usage = Usage(
                input_tokens=totals.input_tokens or self.usage.input_tokens,
                output_tokens=totals.output_tokens,
                cached_tokens=totals.cache_read_input_tokens or self.usage.cached_tokens,
            )

    def finish(self) -> Iterator[ChatEvent]:
        reason = _FINISH.get(self.stop_reason or "", FinishReason.stop)
        yield Finish(reason=reason, usage=self.usage)
