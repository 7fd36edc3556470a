"""The `llm.chat` job: one generation run by a worker (where local models stay loaded), its
text streamed to listeners as `token` events and its result kept on the job."""

from __future__ import annotations

from typing import Any

from citeline.jobs.context import JobContext
from citeline.jobs.registry import JobKind
from citeline.llm.batching import TokenBatches
from citeline.llm.messages import ChatRequest, ChatResult, TextDelta
from citeline.llm.service import ModelService

CHAT_KIND = "llm.chat"


def chat(context: JobContext[object]) -> dict[str, Any]:
    service = ModelService(
        context.sessions, context.connection, context.settings, lease=context.lease
    )
    request = ChatRequest.model_validate(context.args["request"])
    reply = service.start(
        str(context.args["model"]),
        request,
        subject=context.owner,
        conversation=context.args.get("conversation"),
        job_id=context.job_id,
        workspace_id=context.workspace_id,
    )
    events = []
    batches = TokenBatches(lambda text: context.emit("token", {"text": text}))
    try:
        for event in reply:
            events.append(event)
            if isinstance(event, TextDelta):
                batches.add(event.text)
        batches.flush()
    finally:
        reply.close()
    result = ChatResult.collect(events)
    return {"model": reply.served_by.label, **result.model_dump(mode="json")}


CHAT = JobKind(CHAT_KIND, chat, queue="high", timeout_seconds=900, max_attempts=1)


def chat_args(model: str, request: ChatRequest, conversation: str | None) -> dict[str, Any]:
    return {
        "model": model,
        "request": request.model_dump(mode="json", exclude_unset=True),
        "conversation": conversation,
    }
