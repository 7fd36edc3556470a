"""The asynchronous RAG API: `POST /chat`, `GET /job-status/{id}`, `GET /result/{id}`, and
the same under `/v1/answers`, where `stream=true` answers with the job's Server-Sent Events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from citeline.answers.service import AnswerService
from citeline.api.deps import AccessDep, ResourcesDep, StreamHubDep
from citeline.jobs.stream import job_events

router = APIRouter(tags=["answers"])


def get_answer_service(resources: ResourcesDep, access: AccessDep) -> AnswerService:
    return resources.answers(access)


AnswerServiceDep = Annotated[AnswerService, Depends(get_answer_service)]


class AskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(default=None, ge=1, le=50, description="Passages to retrieve")
    model: str | None = Field(default=None, description="Model alias or name[@N]")
    context_tokens: int | None = Field(default=None, ge=100, le=32000)
    max_tokens: int | None = Field(default=None, ge=16, le=4096)
    min_relevance: float | None = Field(default=None, ge=-1, le=1)


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="The question")
    knowledge_base: str = Field(description="Knowledge base id or name")
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
def chat(body: AskIn, answers: AnswerServiceDep) -> AskOut:
    """Ask a question of a knowledge base; the answer is computed by a worker."""
    return _enqueue(body, answers, "")


@router.get("/job-status/{job_id}")
def job_status(job_id: uuid.UUID, answers: AnswerServiceDep) -> dict[str, Any]:
    return answers.status(job_id)


@router.get("/result/{job_id}")
def result(job_id: uuid.UUID, answers: AnswerServiceDep) -> dict[str, Any]:
    """The answer, or 409 with the status while it is not finished."""
    return answers.result(job_id)


@router.post(
    "/v1/answers",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def ask(
    body: AskIn,
    answers: AnswerServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    stream: Annotated[bool, Query(description="Answer with Server-Sent Events")] = False,
) -> JSONResponse | StreamingResponse:
    """Ask; with `stream=true` the response is the job's events: `retrieval`, `token`,
    `citation`, `error`, `complete`, then the job's terminal event."""
    out = await run_in_threadpool(_enqueue, body, answers, "/v1/answers")
    if not stream:
        return JSONResponse(out.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    events = job_events(out.job_id, 0, events=resources.events, hub=hub)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-Job-Id": str(out.job_id),
            "X-Conversation-Id": str(out.conversation_id or ""),
        },
    )


@router.get("/v1/answers/{job_id}")
def answer_status(job_id: uuid.UUID, answers: AnswerServiceDep) -> dict[str, Any]:
    return answers.status(job_id)


@router.get("/v1/answers/{job_id}/result")
def answer_result(job_id: uuid.UUID, answers: AnswerServiceDep) -> dict[str, Any]:
    return answers.result(job_id)


@router.get("/v1/conversations/{conversation_id}")
def conversation(conversation_id: uuid.UUID, answers: AnswerServiceDep) -> dict[str, Any]:
    found = answers.conversation(conversation_id)
    return {
        "id": str(found.id),
        "knowledge_base_id": str(found.knowledge_base_id),
        "title": found.title,
        "created_at": found.created_at.isoformat(),
        "turns": [
            {
                "ordinal": t.ordinal,
                "question": t.question,
                "search_query": t.search_query,
                "status": t.status,
                "answer": t.answer,
                "citations": t.citations,
                "job_id": str(t.job_id) if t.job_id else None,
                "created_at": t.created_at.isoformat(),
            }
            for t in answers.turns(conversation_id)
        ],
    }
