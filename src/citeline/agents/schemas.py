"""What the agent API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citeline.agents.service import MAX_INPUT_CHARS, AgentView, TaskView


class AgentIn(BaseModel):
    """Either a completed builder session (`builder_session_id`, with optional overrides) or a
    spec: `system_prompt`, and optionally model, knowledge bases, tools, workflow, concurrency."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=64, description="Posting a name again adds a version"
    )
    builder_session_id: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=2000)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    model: str | None = Field(
        default=None, max_length=200, description="Model alias or name[@N] (default: assistant)"
    )
    knowledge_bases: list[str] | None = Field(default=None, max_length=20)
    tools: list[str] | None = Field(default=None, max_length=50)
    workflow: dict[str, Any] | None = Field(
        default=None, description="See GET /v1/agents/workflow.schema.json"
    )
    concurrency: int | None = Field(default=None, ge=1, le=32)


class AgentOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    label: str
    description: str
    status: str = Field(description="idle, busy, error or offline")
    status_reason: str | None
    versions: int
    running: int
    queued: int
    waiting_review: int
    system_prompt: str
    model: str
    knowledge_bases: list[str]
    tools: list[str]
    workflow: dict[str, Any]
    concurrency: int
    enabled: bool
    builder_session_id: str | None
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, view: AgentView) -> AgentOut:
        a = view.agent
        return cls(
            id=a.id, name=a.name, version=a.version, label=a.label, description=a.description,
            status=view.status.value, status_reason=view.reason, versions=view.versions,
            running=view.running, queued=view.queued, waiting_review=view.waiting_review,
            system_prompt=a.system_prompt, model=a.model, knowledge_bases=a.knowledge_base_ids,
            tools=a.tools, workflow=a.workflow, concurrency=a.concurrency, enabled=a.enabled,
            builder_session_id=a.builder_session_id, created_by=a.created_by,
            created_at=a.created_at,
        )  # fmt: skip


class AgentList(BaseModel):
    agents: list[AgentOut]
    tools: list[str] = Field(description="Tools a workflow may name in this workspace")


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    priority: Literal["high", "normal", "low"] = "normal"


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    node: str
    type: str
    status: str
    attempt: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    model_calls: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class TaskOut(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    agent: str
    job_id: uuid.UUID | None
    status: str = Field(
        description="queued, running, waiting_review, finished, failed, stopped or rejected"
    )
    priority: str
    input: str
    cursor: str | None = Field(description="The node the task is at")
    output: str | None
    citations: list[dict[str, Any]]
    review: dict[str, Any] | None
    error: str | None
    attempt: int | None
    retry_of: uuid.UUID | None
    steps: list[StepOut]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_url: str
    events_url: str

    @classmethod
    def of(cls, view: TaskView) -> TaskOut:
        t, job = view.task, view.job
        return cls(
            id=t.id, agent_id=t.agent_id, agent=view.agent.label, job_id=t.job_id,
            status=view.status.value, priority=t.priority, input=t.input, cursor=t.cursor,
            output=t.output, citations=t.citations, review=t.review,
            error=job.error if job is not None and view.status.ended else None,
            attempt=job.attempt if job is not None else None, retry_of=t.retry_of,
            steps=[StepOut.model_validate(s) for s in view.steps], created_at=t.created_at,
            started_at=job.started_at if job is not None else None,
            finished_at=job.finished_at if job is not None else None,
            status_url=f"/v1/agents/tasks/{t.id}", events_url=f"/v1/agents/tasks/{t.id}/events",
        )  # fmt: skip


class TaskList(BaseModel):
    tasks: list[TaskOut]
