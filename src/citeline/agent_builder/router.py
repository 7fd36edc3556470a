"""The agent builder API, at the routes its specification names (`/sessions/...`) and the same
under `/v1/agent-builder/sessions`: create, message, status, resume, delete; plus a listing and
the workflow as a Mermaid diagram."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from citeline.agent_builder.schemas import MessageIn, SessionList, SessionOut, SessionSummary
from citeline.agent_builder.service import BuilderService, View
from citeline.api.deps import BuilderServiceDep

router = APIRouter(prefix="/v1/agent-builder/sessions", tags=["agent builder"])
short = APIRouter(prefix="/sessions", tags=["agent builder"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the session is completed or abandoned, or busy"}
}


def _out(view: View, builder: BuilderService) -> SessionOut:
    return SessionOut.of(view, builder.settings.agent_builder_ttl_seconds)


@router.post("", status_code=status.HTTP_201_CREATED)
@short.post("/create", status_code=status.HTTP_201_CREATED)
def create_session(builder: BuilderServiceDep) -> SessionOut:
    """Start a builder conversation; its first question is in `question`."""
    return _out(builder.create(), builder)


@router.get("")
def list_sessions(
    builder: BuilderServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SessionList:
    return SessionList(
        sessions=[SessionSummary.model_validate(s) for s in builder.all(limit, offset)]
    )


@router.post("/{session_id}/message", responses=CONFLICT)
@short.post("/{session_id}/message", responses=CONFLICT)
def send_message(session_id: uuid.UUID, body: MessageIn, builder: BuilderServiceDep) -> SessionOut:
    """Words (read by the `assistant` model, each value checked in code) or a structured
    answer; the stage machine then picks the next question."""
    answer = body.answer.to_answer() if body.answer is not None else None
    return _out(builder.message(session_id, body.text, answer), builder)


@router.get("/{session_id}/status")
@short.get("/{session_id}/status")
def session_status(session_id: uuid.UUID, builder: BuilderServiceDep) -> SessionOut:
    """Stage, collected and missing fields, and the draft prompt, tools and workflow."""
    return _out(builder.status(session_id), builder)


@router.post("/{session_id}/resume", responses=CONFLICT)
@short.post("/{session_id}/resume", responses=CONFLICT)
def resume_session(session_id: uuid.UUID, builder: BuilderServiceDep) -> SessionOut:
    """Restore a session whose live state expired, or reopen an abandoned one."""
    return _out(builder.resume(session_id), builder)


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
@short.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(session_id: uuid.UUID, builder: BuilderServiceDep) -> Response:
    builder.delete(session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{session_id}/workflow.mmd",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 409: {"description": "no workflow yet"}},
)
def workflow_mermaid(session_id: uuid.UUID, builder: BuilderServiceDep) -> PlainTextResponse:
    """The session's workflow as a Mermaid `flowchart TD`."""
    return PlainTextResponse(builder.mermaid(session_id))
