"""`POST /v1/chat/completions`: Citeline's models behind OpenAI's chat API, so existing
OpenAI clients and tools can use them. Each completion runs as an `llm.chat` job on a worker,
where local models stay loaded; its tokens stream back through the job's events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import suppress
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import JobServiceDep, ResourcesDep, StreamHubDep
from citeline.errors import Conflict, InvalidInput
from citeline.jobs.stream import follow, sse_frame, stream_response
from citeline.llm.chat_job import CHAT_KIND, chat_args
from citeline.llm.messages import ChatRequest, Message, Role, ToolCall, ToolSpec

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    n: int = 1
    user: str | None = None


class FunctionCallOut(BaseModel):
    name: str
    arguments: str = Field(description="JSON")


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class CompletionMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    tool_calls: list[ToolCallOut] | None = None


class ChoiceOut(BaseModel):
    index: int
    message: CompletionMessageOut
    finish_reason: str


class PromptTokensDetails(BaseModel):
    cached_tokens: int


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ChatCompletionOut(BaseModel):
    """OpenAI's chat completion, as a non-streamed request gets it."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The version that served it: name@N")
    choices: list[ChoiceOut]
    usage: CompletionUsage


def to_chat_request(body: ChatCompletionIn) -> ChatRequest:
    if body.n != 1:
        raise InvalidInput("only n=1 is supported", field="n")
    values: dict[str, Any] = {"messages": [_message(m, i) for i, m in enumerate(body.messages)]}
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        values["max_tokens"] = max_tokens
    for name in ("temperature", "top_p", "seed"):
        if getattr(body, name) is not None:
            values[name] = getattr(body, name)
    if body.stop is not None:
        values["stop"] = [body.stop] if isinstance(body.stop, str) else body.stop
    if body.response_format is not None:
        values["json_schema"] = _schema(body.response_format)
    if body.tools:
        values["tools"] = [_tool(tool, i) for i, tool in enumerate(body.tools)]
    return ChatRequest.model_validate(values)


def _message(message: OpenAIMessage, index: int) -> Message:
    content = message.content
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.get("type") != "text":
                raise InvalidInput(
                    f"message {index}: only text content parts are supported, "
                    f"not {part.get('type')!r}",
                    field=f"messages.{index}.content",
                )
            texts.append(str(part.get("text", "")))
        content = "".join(texts)
    calls = []
    for call in message.tool_calls or ():
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            raise InvalidInput(
                f"message {index}: tool call arguments are not JSON",
                field=f"messages.{index}.tool_calls",
            ) from None
        calls.append(
            ToolCall(
                id=str(call.get("id", "")),
                name=function.get("name", ""),
                arguments=arguments if isinstance(arguments, dict) else {},
            )
        )
    role = Role.system if message.role == "developer" else Role(message.role)
    return Message(
        role=role, content=content or "", tool_calls=calls, tool_call_id=message.tool_call_id
    )


def _schema(response_format: dict[str, Any]) -> dict[str, Any]:
    kind = response_format.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    raise InvalidInput(
        "response_format must be text, json_object or json_schema with a schema",
        field="response_format",
    )


def _tool(tool: dict[str, Any], index: int) -> ToolSpec:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
        raise InvalidInput(f"tool {index} must be a function with a name", field=f"tools.{index}")
    return ToolSpec(
        name=function["name"],
        description=function.get("description") or "",
        parameters=function.get("parameters") or {"type": "object"},
    )


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        200: {
            "model": ChatCompletionOut,
            "content": {"text/event-stream": {}},
            "description": "The completion; with `stream: true`, its chunks as Server-Sent Events",
        }
    },
)
async def chat_completions(
    body: ChatCompletionIn,
    resources: ResourcesDep,
    jobs: JobServiceDep,
    hub: StreamHubDep,
    conversation: str | None = Header(default=None, alias="X-Conversation-Id"),
) -> StreamingResponse | JSONResponse:
    request = to_chat_request(body)
    if request.json_schema == {}:
        request = request.model_copy(update={"json_schema": None})
    args = chat_args(body.model, request, conversation)
    job = await run_in_threadpool(jobs.enqueue, CHAT_KIND, args)
    completion_id = f"chatcmpl-{job.id.hex}"
    created = int(time.time())
    events = follow(job.id, 0, events=resources.events, hub=hub)
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _stream(events, jobs, job.id, completion_id, created, body.model, include_usage)
        return stream_response(chunks)
    try:
        async for item in events:
            if item is None or item[1] not in {"finished", "failed", "stopped"}:
                continue
            if item[1] != "finished":
                error = _error(item)
                return JSONResponse({"error": error}, status_code=int(error["code"]))
            result = await run_in_threadpool(jobs.result, job.id)
            completion = _completion(result, completion_id, created)
            return JSONResponse(completion.model_dump(mode="json", exclude_none=True))
    finally:
        await events.aclose()
    raise AssertionError("the event stream ended without a terminal event")


def _completion(result: dict[str, Any], completion_id: str, created: int) -> ChatCompletionOut:
    calls = [_tool_call(call) for call in result["tool_calls"]] or None
    message = CompletionMessageOut(content=result["text"], tool_calls=calls)
    return ChatCompletionOut(
        id=completion_id,
        created=created,
        model=result["model"],
        choices=[ChoiceOut(index=0, message=message, finish_reason=result["finish_reason"])],
        usage=CompletionUsage.model_validate(_usage(result["usage"])),
    )


def _tool_call(call: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
    }
    if index is not None:
        out["index"] = index
    return out


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
    }


def _error(item: tuple[int, str, str]) -> dict[str, Any]:
    data = json.loads(item[2]).get("data") or {}
    error = data.get("error") or {}
    return {
        "message": error.get("detail") or data.get("reason") or "the generation was stopped",
        "type": error.get("type") or item[1],
        "code": int(error.get("status") or (499 if item[1] == "stopped" else 502)),
        "provider": error.get("provider"),
        "retryable": bool(error.get("retryable", False)),
    }


async def _stream(
    events: AsyncGenerator[tuple[int, str, str] | None, None],
    jobs: JobServiceDep,
    job_id: uuid.UUID,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return sse_frame(json.dumps(body))

    ended = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for item in events:
            if item is None:
                yield ": keep-alive\n\n"
                continue
            _, type_, raw = item
            if type_ == "token":
                yield chunk({"content": json.loads(raw)["data"]["text"]})
            elif type_ == "finished":
                ended = True
                result = await run_in_threadpool(jobs.result, job_id)
                model = result["model"]
                calls = [_tool_call(c, i) for i, c in enumerate(result["tool_calls"])]
                if calls:
                    yield chunk({"tool_calls": calls})
                yield chunk({}, result["finish_reason"])
                if include_usage:
                    body = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(result["usage"]),
                    }
                    yield sse_frame(json.dumps(body))
                break
            elif type_ in {"failed", "stopped"}:
                ended = True
                yield sse_frame(json.dumps({"error": _error(item)}))
                break
        yield sse_frame("[DONE]")
    finally:
        # A client that went away cancels this task; the clean-up must still run.
        with anyio.CancelScope(shield=True):
            await events.aclose()
            if not ended:
                # Stop the generation instead of finishing it for nobody.
                with suppress(Conflict):  # it ended meanwhile
                    await run_in_threadpool(jobs.cancel, job_id, "the client disconnected")
