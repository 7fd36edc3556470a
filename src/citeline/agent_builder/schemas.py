"""What the agent builder API accepts and returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.agent_builder.service import MAX_MESSAGE_CHARS, Answer, View
from citeline.agent_builder.stages import MAX_GOALS


class AnswerIn(BaseModel):
    """A structured answer: the option the person chose or the checklist they confirmed."""

    model_config = ConfigDict(extra="forbid")

    agent_type: str | None = Field(default=None, max_length=100)
    goals: list[str] | None = Field(default=None, max_length=MAX_GOALS)
    tone: str | None = Field(default=None, max_length=100)
    tools: list[str] | None = Field(default=None, max_length=100)
    human_review: bool | None = None
    confirm: bool | None = Field(default=None, description="Finish (at the review stage only)")

    def to_answer(self) -> Answer:
        return Answer(**self.model_dump())


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        default=None,
        max_length=MAX_MESSAGE_CHARS,
        description="The person's words, read by the model and checked in code",
    )
    answer: AnswerIn | None = Field(
        default=None, description="Instead of words: values the page collected directly"
    )


class ToolOut(BaseModel):
    name: str
    description: str
    source: str
    parameters: dict[str, Any]


class HistoryEntry(BaseModel):
    role: str
    text: str
    stage: str
    at: datetime
    accepted: dict[str, Any] | None = None


class OutputsOut(BaseModel):
    final_prompt: str | None
    workflow: dict[str, Any] | None = Field(description="Assembled by code from a template")
    tools_config: list[dict[str, Any]] | None


class SessionOut(BaseModel):
    id: uuid.UUID
    status: str = Field(description="active, completed or abandoned")
    stage: str
    question: str = Field(description="What the builder asks next")
    fields: dict[str, Any] = Field(description="Collected values; `unknown` until given")
    missing: list[str]
    suggested_tools: list[str] = Field(
        description="Closest to the goals; for the person to confirm"
    )
    available_tools: list[ToolOut]
    history: list[HistoryEntry]
    outputs: OutputsOut
    created_at: datetime
    last_active_at: datetime
    completed_at: datetime | None
    ttl_seconds: int = Field(description="Idle time after which an active session is abandoned")

    @classmethod
    def of(cls, view: View, ttl_seconds: int) -> SessionOut:
        state = view.state
        return cls(
            id=uuid.UUID(state.id),
            status=state.status,
            stage=state.stage,
            question=view.question,
            fields=state.fields,
            missing=view.missing,
            suggested_tools=state.suggested_tools,
            available_tools=[
                ToolOut(
                    name=t.name, description=t.description, source=t.source, parameters=t.parameters
                )
                for t in view.available_tools
            ],
            history=[HistoryEntry.model_validate(h) for h in state.history],
            outputs=OutputsOut(
                final_prompt=state.final_prompt,
                workflow=state.workflow,
                tools_config=state.tools_config,
            ),
            created_at=datetime.fromisoformat(state.created_at),
            last_active_at=datetime.fromisoformat(state.last_active_at),
            completed_at=datetime.fromisoformat(state.completed_at) if state.completed_at else None,
            ttl_seconds=ttl_seconds,
        )


class SessionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    stage: str
    created_at: datetime
    last_active_at: datetime


class SessionList(BaseModel):
    sessions: list[SessionSummary]
