"""The assistant API: conversations, messages (each answered by a run on the queue), a run's
state and events (Server-Sent Events, or a WebSocket per conversation), approving or denying
a tool call, cancelling."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, WebSocket, WebSocketDisconnect, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import (
    AssistantServiceDep,
    ResourcesDep,
    StreamHubDep,
    socket_access,
    socket_hub,
    socket_resources,
)
from citeline.assistant.schemas import (
    ConversationIn,
    ConversationList,
    ConversationOut,
    ConversationSummary,
    MessageIn,
    MessageOut,
    RunCreated,
    RunOut,
    ToolCallOut,
)
from citeline.assistant.service import AssistantService, RunView
from citeline.errors import CitelineError, Conflict
from citeline.jobs.stream import StreamHub, follow, sse_response
from citeline.resources import Resources

router = APIRouter(prefix="/v1/assistant", tags=["assistant"])
# WebSockets authenticate in their handler (a refusal closes the socket before it opens).
socket = APIRouter(prefix="/v1/assistant", tags=["assistant"])

MAX_INT = 2**31 - 1


def run_out(view: RunView) -> RunOut:
    run = view.run
    return RunOut(
        id=run.id,
        conversation_id=run.conversation_id,
        job_id=run.job_id,
        state=view.state,
        live=view.live,
        pending=view.pending,
        buffer=view.buffer,
        steps=run.steps,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        error=run.error,
        tool_calls=[ToolCallOut.model_validate(c) for c in view.tool_calls],
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


def _conversation(assistant: AssistantService, conversation_id: uuid.UUID) -> ConversationOut:
    conversation = assistant.get(conversation_id)
    runs = assistant.runs(conversation_id)
    state = assistant.run(runs[-1].id).state if runs else "idle"
    return ConversationOut.model_validate(
        {
            **ConversationSummary.model_validate(conversation).model_dump(),
            "messages": [MessageOut.model_validate(m) for m in assistant.messages(conversation_id)],
            "state": state,
            "last_run_id": runs[-1].id if runs else None,
        }
    )


@router.post("/conversations", status_code=status.HTTP_201_CREATED)
def create_conversation(body: ConversationIn, assistant: AssistantServiceDep) -> ConversationOut:
    """Start a conversation: its model alias, the knowledge bases it may search, the tools it
    may call (default every tool the caller may use) and an optional system prompt."""
    conversation = assistant.create(
        title=body.title,
        model=body.model,
        knowledge_bases=body.knowledge_bases,
        tools=body.tools,
        system_prompt=body.system_prompt,
    )
    return _conversation(assistant, conversation.id)


@router.get("/conversations")
def list_conversations(
    assistant: AssistantServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ConversationList:
    return ConversationList(
        conversations=[ConversationSummary.model_validate(c) for c in assistant.all(limit, offset)]
    )


@router.get("/conversations/{conversation_id}")
def get_conversation(conversation_id: uuid.UUID, assistant: AssistantServiceDep) -> ConversationOut:
    return _conversation(assistant, conversation_id)


@router.delete("/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(conversation_id: uuid.UUID, assistant: AssistantServiceDep) -> Response:
    assistant.delete(conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"description": "a reply is still being written"},
        413: {"description": "the message is too long"},
    },
)
def send_message(
    conversation_id: uuid.UUID, body: MessageIn, assistant: AssistantServiceDep
) -> RunCreated:
    """Send a message; a run on the queue writes the reply. Follow it on `events_url`."""
    sent = assistant.send(conversation_id, body.content)
    assert sent.run.job_id is not None
    return RunCreated(
        run_id=sent.run.id,
        job_id=sent.run.job_id,
        message_id=sent.message.id,
        status_url=f"/v1/assistant/runs/{sent.run.id}",
        events_url=f"/v1/assistant/runs/{sent.run.id}/events",
    )


@router.get("/runs/{run_id}")
def get_run(run_id: uuid.UUID, assistant: AssistantServiceDep) -> RunOut:
    """The run's state (live from Redis while it has it, else as recorded), the tool calls
    waiting for approval, and every tool call made."""
    return run_out(assistant.run(run_id))


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def run_events(
    run_id: uuid.UUID,
    assistant: AssistantServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> StreamingResponse:
    """The run's typed events (token, tool_request, tool_result, thinking, error, complete;
    each {content, metadata}) as Server-Sent Events; reconnect with `Last-Event-ID`."""
    view = assistant.run(run_id)
    if view.run.job_id is None:
        raise Conflict(f"assistant run {run_id} has not been queued")
    start = last_event_id if last_event_id is not None else (after or 0)
    return sse_response(
        view.run.job_id,
        start,
        events=resources.events,
        hub=hub,
        headers={"X-Job-Id": str(view.run.job_id)},
    )


@router.post("/runs/{run_id}/approve", responses={409: {"description": "nothing to approve"}})
def approve_run(run_id: uuid.UUID, assistant: AssistantServiceDep) -> RunOut:
    """Let the tool calls the run waits on go ahead."""
    return run_out(assistant.decide(run_id, approve=True))


@router.post("/runs/{run_id}/deny", responses={409: {"description": "nothing to deny"}})
def deny_run(run_id: uuid.UUID, assistant: AssistantServiceDep) -> RunOut:
    """Refuse the tool calls the run waits on; the model is told and goes on without them."""
    return run_out(assistant.decide(run_id, approve=False))


@router.post("/runs/{run_id}/cancel", responses={409: {"description": "it already ended"}})
def cancel_run(run_id: uuid.UUID, assistant: AssistantServiceDep) -> RunOut:
    return run_out(assistant.cancel(run_id))


@socket.websocket("/conversations/{conversation_id}/ws")
async def conversation_socket(websocket: WebSocket, conversation_id: uuid.UUID) -> None:
    """A conversation over one WebSocket. Send {"type": "message", "content": ...}, or
    "approve", "deny" or "cancel" for the current run; receive each run's events as the SSE
    stream carries them ({seq, type, job_id, data: {content, metadata}, created_at}), and a
    {"type": "run", "data": {run_id, ...}} when a message starts a run."""
    resources = socket_resources(websocket)
    try:
        access = await socket_access(websocket)
        assistant = resources.assistant(access)
        await run_in_threadpool(assistant.get, conversation_id)
    except CitelineError as exc:
        await websocket.close(code=1008, reason=exc.detail[:120])
        return
    offered = websocket.headers.get("sec-websocket-protocol") or ""
    await websocket.accept(subprotocol="citeline" if "citeline" in offered else None)
    session = _Socket(websocket, assistant, resources, socket_hub(websocket), conversation_id)
    try:
        await session.serve()
    except WebSocketDisconnect:
        pass  # the client left; its runs go on and can be followed over SSE
    finally:
        session.stop()


class _Socket:
    def __init__(
        self,
        websocket: WebSocket,
        assistant: AssistantService,
        resources: Resources,
        hub: StreamHub,
        conversation_id: uuid.UUID,
    ) -> None:
        self.websocket = websocket
        self.assistant = assistant
        self.resources = resources
        self.hub = hub
        self.conversation_id = conversation_id
        self.run_id: uuid.UUID | None = None
        self.pumps: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        while True:
            raw = await self.websocket.receive_text()
            try:
                await self._handle(raw)
            except CitelineError as exc:
                await self._problem(exc.detail, status=exc.status)

    async def _handle(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            await self._problem('send JSON: {"type": "message", "content": "..."}')
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "message":
            try:
                body = MessageIn.model_validate({"content": message.get("content")})
            except ValidationError as exc:
                await self._problem(f"content: {exc.errors()[0]['msg']}", status=422)
                return
            sent = await run_in_threadpool(self.assistant.send, self.conversation_id, body.content)
            assert sent.run.job_id is not None
            self.run_id = sent.run.id
            await self.websocket.send_json(
                {
                    "type": "run",
                    "data": {
                        "run_id": str(sent.run.id),
                        "job_id": str(sent.run.job_id),
                        "message_id": str(sent.message.id),
                    },
                }
            )
            task = asyncio.create_task(self._pump(sent.run.job_id))
            self.pumps.add(task)
            task.add_done_callback(self.pumps.discard)
        elif kind in ("approve", "deny", "cancel"):
            if self.run_id is None:
                await self._problem("no run has started on this socket yet", status=409)
                return
            if kind == "cancel":
                view = await run_in_threadpool(self.assistant.cancel, self.run_id)
            else:
                view = await run_in_threadpool(
                    lambda: self.assistant.decide(self.run_id, approve=kind == "approve")  # type: ignore[arg-type]
                )
            await self.websocket.send_json(
                {"type": "run_state", "data": run_out(view).model_dump(mode="json")}
            )
        else:
            await self._problem("type must be message, approve, deny or cancel")

    async def _pump(self, job_id: uuid.UUID) -> None:
        async for item in follow(job_id, 0, events=self.resources.events, hub=self.hub):
            if item is not None:
                await self.websocket.send_text(item[2])

    async def _problem(self, detail: str, *, status: int = 400) -> None:
        data: dict[str, Any] = {"content": detail, "metadata": {"status": status}}
        await self.websocket.send_json({"type": "error", "data": data})

    def stop(self) -> None:
        for task in list(self.pumps):
            task.cancel()
