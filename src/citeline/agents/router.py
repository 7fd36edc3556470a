"""The agent API: the registry (`/v1/agents`), tasks with priorities, their steps and live
events, a person's review; and the gateway route `POST /agents/{agent_id}/execute`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from citeline.agents.schemas import (
    AgentIn,
    AgentList,
    AgentOut,
    DecisionIn,
    TaskIn,
    TaskList,
    TaskOut,
)
from citeline.agents.service import AgentSpec
from citeline.agents.workflow import WORKFLOW_SCHEMA, to_mermaid
from citeline.api.deps import AgentServiceDep, ResourcesDep, StreamHubDep
from citeline.errors import InvalidInput
from citeline.jobs.stream import sse_response

router = APIRouter(prefix="/v1/agents", tags=["agents"])
gateway = APIRouter(tags=["agents"])

MAX_INT = 2**31 - 1
OFFLINE: dict[int | str, dict[str, Any]] = {409: {"description": "the agent is offline"}}


@router.get("/workflow.schema.json")
def workflow_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every agent workflow follows."""
    return WORKFLOW_SCHEMA


@router.post("", status_code=status.HTTP_201_CREATED)
def create_agent(body: AgentIn, agents: AgentServiceDep) -> AgentOut:
    """Register an agent (or a new version of one) from a completed builder session, or from a
    spec; its workflow is checked against the tools that exist in this workspace."""
    if body.builder_session_id is not None:
        overrides = {
            "knowledge_bases": body.knowledge_bases,
            "model": body.model,
            "concurrency": body.concurrency,
        }
        return AgentOut.of(agents.from_builder(body.name, body.builder_session_id, overrides))
    if body.system_prompt is None:
        raise InvalidInput("give a system_prompt, or a builder_session_id", field="system_prompt")
    spec = AgentSpec(
        name=body.name,
        system_prompt=body.system_prompt,
        model=body.model,
        knowledge_bases=body.knowledge_bases or (),
        tools=body.tools or (),
        workflow=body.workflow,
        concurrency=body.concurrency or 1,
        description=body.description,
    )
    return AgentOut.of(agents.create(spec))


@router.get("")
def list_agents(agents: AgentServiceDep, all_versions: bool = False) -> AgentList:
    return AgentList(
        agents=[AgentOut.of(v) for v in agents.list(all_versions=all_versions)],
        tools=agents.tools(),
    )


@router.get("/tasks")
def list_tasks(
    agents: AgentServiceDep,
    agent: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskList:
    return TaskList(tasks=[TaskOut.of(v) for v in agents.tasks(agent, limit=limit)])


@router.get("/tasks/{task_id}")
def get_task(task_id: uuid.UUID, agents: AgentServiceDep) -> TaskOut:
    """The task's status, every step (inputs, outputs, model and tool calls, citations) and
    its cited output."""
    return TaskOut.of(agents.task(task_id))


@router.get(
    "/tasks/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def task_events(
    task_id: uuid.UUID,
    agents: AgentServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> StreamingResponse:
    """The task's events (`step.started`, `step`, `suspended` at a review, `resumed`,
    `task.output`, then its end) as Server-Sent Events; reconnect with `Last-Event-ID`."""
    view = agents.task(task_id)
    if view.task.job_id is None:
        raise InvalidInput("the task has no job yet; try again", field="task_id")
    start = last_event_id if last_event_id is not None else (after or 0)
    return sse_response(
        view.task.job_id,
        start,
        events=resources.events,
        hub=hub,
        headers={"X-Job-Id": str(view.task.job_id)},
    )


@router.post("/tasks/{task_id}/approve", responses={409: {"description": "no review waiting"}})
def approve_task(
    task_id: uuid.UUID, agents: AgentServiceDep, body: DecisionIn | None = None
) -> TaskOut:
    """Approve the human_review step the task waits at: it runs on past it."""
    return TaskOut.of(agents.decide(task_id, approve=True, note=body.note if body else ""))


@router.post("/tasks/{task_id}/reject", responses={409: {"description": "no review waiting"}})
def reject_task(
    task_id: uuid.UUID, agents: AgentServiceDep, body: DecisionIn | None = None
) -> TaskOut:
    """Reject the human_review step the task waits at: the task stops, `rejected`."""
    return TaskOut.of(agents.decide(task_id, approve=False, note=body.note if body else ""))


@router.post("/tasks/{task_id}/cancel", responses={409: {"description": "it already ended"}})
def cancel_task(task_id: uuid.UUID, agents: AgentServiceDep) -> TaskOut:
    return TaskOut.of(agents.cancel(task_id))


@router.post(
    "/tasks/{task_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "it has not ended badly"}},
)
def retry_task(task_id: uuid.UUID, agents: AgentServiceDep) -> TaskOut:
    """A new task with the same agent, input and priority as one that failed, was stopped
    or rejected."""
    return TaskOut.of(agents.retry(task_id))


@router.get("/{ref}")
def get_agent(ref: str, agents: AgentServiceDep) -> AgentOut:
    """An agent by id, `name` (its newest version) or `name@N`, with its status."""
    return AgentOut.of(agents.view(ref))


@router.post("/{ref}/disable")
def disable_agent(ref: str, agents: AgentServiceDep) -> AgentOut:
    """Take the agent offline: it takes no new tasks (those it has go on)."""
    return AgentOut.of(agents.set_enabled(ref, False))


@router.post("/{ref}/enable")
def enable_agent(ref: str, agents: AgentServiceDep) -> AgentOut:
    """Bring a disabled agent back."""
    return AgentOut.of(agents.set_enabled(ref, True))


@router.get("/{ref}/workflow.mmd", response_class=PlainTextResponse)
def agent_workflow_diagram(ref: str, agents: AgentServiceDep) -> str:
    """The agent's workflow as a Mermaid `flowchart TD`."""
    return to_mermaid(agents.get(ref).workflow)


@router.delete(
    "/{ref}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "a task of it has not ended"}},
)
def delete_agent(ref: str, agents: AgentServiceDep) -> Response:
    """Delete `name@N` (or an id), or with `name` every version, and their tasks."""
    agents.delete(ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{ref}/tasks", status_code=status.HTTP_202_ACCEPTED, responses=OFFLINE)
def submit_task(ref: str, body: TaskIn, agents: AgentServiceDep) -> TaskOut:
    """Queue a task for the agent at a priority (high runs before normal before low); follow
    it on `events_url`."""
    return TaskOut.of(agents.submit(ref, body.input, body.priority))


@gateway.post("/agents/{agent_id}/execute", status_code=status.HTTP_202_ACCEPTED, responses=OFFLINE)
def execute_agent(agent_id: str, body: TaskIn, agents: AgentServiceDep) -> TaskOut:
    """The gateway's route to the agent service: the same as `POST /v1/agents/{id}/tasks`."""
    return TaskOut.of(agents.submit(agent_id, body.input, body.priority))
