"""The asynchronous RAG API: `POST /chat`, `GET /job-status/{id}`, `GET /result/{id}`, and
the same under `/v1/answers`, where `stream=true` answers with the job's Server-Sent Events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from citeline.answers.schemas import (
    AnswerOut,
    AnswerStatusOut,
    AskIn,
    AskOut,
    ConversationList,
    ConversationOut,
    ConversationPatch,
    ConversationSummary,
    TurnOut,
)
from citeline.answers.service import AnswerService
from citeline.api.deps import AnswerServiceDep, ResourcesDep, StreamHubDep
from citeline.errors import InvalidInput
from citeline.jobs.stream import sse_response

router = APIRouter(tags=["answers"])

NOT_FINISHED: dict[int | str, dict[str, Any]] = {
    409: {"description": "the answer is not finished yet"}
}


def _enqueue(body: AskIn, answers: AnswerService, prefix: str) -> AskOut:
    job, conversation_id = answers.ask(
        body.query,
        body.knowledge_base,
        conversation_id=body.conversation_id,
        options=body.options.model_dump(exclude_none=True),
    )
    return AskOut(
        job_id=job.id,
        conversation_id=conversation_id,
        status_url=f"{prefix}/{job.id}" if prefix else f"/job-status/{job.id}",
        result_url=f"{prefix}/{job.id}/result" if prefix else f"/result/{job.id}",
        events_url=f"/v1/jobs/{job.id}/events",
    )


@router.post("/chat", status_code=status.HTTP_202_ACCEPTED)
def chat(
    answers: AnswerServiceDep,
    body: Annotated[AskIn | None, Body()] = None,
    query: Annotated[
        str | None, Query(max_length=2000, description="The question, instead of a body")
    ] = None,
) -> AskOut:
    """Ask a question; the answer is computed by a worker. Send a JSON body, or just
    `?query=...` to ask the workspace's default knowledge base."""
    if body is None:
        if query is None:
            raise InvalidInput("send the question as `?query=` or a JSON body", field="query")
        body = AskIn(query=query)
    return _enqueue(body, answers, "")


@router.get("/job-status/{job_id}")
def job_status(job_id: uuid.UUID, answers: AnswerServiceDep) -> AnswerStatusOut:
    return AnswerStatusOut.model_validate(answers.status(job_id))


@router.get("/result/{job_id}", responses=NOT_FINISHED, response_model_exclude_unset=True)
def result(job_id: uuid.UUID, answers: AnswerServiceDep) -> AnswerOut:
    """The answer, or 409 with the status while it is not finished."""
    return AnswerOut.model_validate(answers.result(job_id))


@router.post(
    "/v1/answers",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {"model": AskOut, "description": "The question is queued"},
        200: {"content": {"text/event-stream": {}}, "description": "With `stream=true`"},
    },
    response_model=None,
)
async def ask(
    body: AskIn,
    answers: AnswerServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events")] = False,
) -> AskOut | StreamingResponse:
    """Ask; with `stream=true` the response is the job's events: `retrieval`, `token`,
    `citation`, `error`, `complete`, then the job's terminal event."""
    out = await run_in_threadpool(_enqueue, body, answers, "/v1/answers")
    if not stream:
        return out
    return sse_response(
        out.job_id,
        0,
        events=resources.events,
        hub=hub,
        headers={"X-Job-Id": str(out.job_id), "X-Conversation-Id": str(out.conversation_id or "")},
    )


@router.get("/v1/answers/{job_id}")
def answer_status(job_id: uuid.UUID, answers: AnswerServiceDep) -> AnswerStatusOut:
    return AnswerStatusOut.model_validate(answers.status(job_id))


@router.get(
    "/v1/answers/{job_id}/result", responses=NOT_FINISHED, response_model_exclude_unset=True
)
def answer_result(job_id: uuid.UUID, answers: AnswerServiceDep) -> AnswerOut:
    return AnswerOut.model_validate(answers.result(job_id))


@router.get("/v1/conversations")
def list_conversations(
    answers: AnswerServiceDep,
    title: Annotated[str | None, Query(max_length=200, description="Part of the title")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationList:
    """The caller's conversations, most recently active first."""
    rows = answers.conversations(title=title, limit=limit)
    return ConversationList(
        conversations=[
            ConversationSummary(
                id=c.id,
                knowledge_base_id=c.knowledge_base_id,
                title=c.title,
                turn_count=count,
                created_at=c.created_at,
                updated_at=c.updated_at,
            )
            for c, count in rows
        ]
    )


@router.patch("/v1/conversations/{conversation_id}")
def rename_conversation(
    conversation_id: uuid.UUID, body: ConversationPatch, answers: AnswerServiceDep
) -> ConversationOut:
    answers.rename(conversation_id, body.title)
    return conversation(conversation_id, answers)


@router.delete("/v1/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(conversation_id: uuid.UUID, answers: AnswerServiceDep) -> Response:
    answers.delete_conversation(conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/conversations/{conversation_id}")
def conversation(conversation_id: uuid.UUID, answers: AnswerServiceDep) -> ConversationOut:
    found = answers.conversation(conversation_id)
    turns = [TurnOut.model_validate(turn, from_attributes=True) for turn in answers.turns(found.id)]
    return ConversationOut(
        id=found.id,
        knowledge_base_id=found.knowledge_base_id,
        title=found.title,
        created_at=found.created_at,
        turns=turns,
    )
