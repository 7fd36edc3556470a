"""Builder sessions for a caller: create, take a message, report status, resume, delete.

Every change is written to the live state in Redis (with the TTL) and to the database row in
the same call, so an expired key loses nothing: `resume` rebuilds it from the row. Sessions
idle past the TTL are marked abandoned by `sweep`, which runs on each use of the service
(one indexed UPDATE), so no background thread is needed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from citeline.agent_builder.interpret import Ask, Reader, Reading
from citeline.agent_builder.model import JobAsk
from citeline.agent_builder.models import BuilderSession
from citeline.agent_builder.outputs import (
    BUILT_IN_TOOLS,
    ToolInfo,
    ToolSource,
    build_workflow,
    final_prompt,
    suggest_tools,
    tools_config,
)
from citeline.agent_builder.stages import (
    AGENT_TYPES,
    LABELS,
    MAX_GOAL_CHARS,
    MAX_GOALS,
    TONES,
    UNKNOWN,
    SessionStatus,
    Stage,
    empty_fields,
    known,
    missing,
    next_stage,
    question,
)
from citeline.agent_builder.state import LiveState, LiveStore
from citeline.agents import to_mermaid, validate_workflow
from citeline.auth import Access, Role
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.jobs.service import JobService
from citeline.llm import Embedder
from citeline.settings import Settings

MAX_MESSAGE_CHARS = 4000
# PostgreSQL's JSONB refuses NUL; other control characters (but tab and newline) mean nothing.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_LIST = 200


@dataclass(frozen=True)
class Answer:
    """A structured answer the page sends instead of words (a chosen option, a confirmed
    checklist); `None` leaves a field as it is."""

    agent_type: str | None = None
    goals: list[str] | None = None
    tone: str | None = None
    tools: list[str] | None = None
    human_review: bool | None = None
    confirm: bool | None = None


@dataclass(frozen=True)
class View:
    """A session as its caller sees it."""

    state: LiveState
    missing: list[str]
    question: str
    available_tools: list[ToolInfo]


class BuilderService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        settings: Settings,
        access: Access,
        *,
        jobs: JobService,
        embedder: Callable[[], Embedder],
        tool_sources: Sequence[ToolSource] = (),
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.access = access
        self.connection = connection
        self.live = LiveStore(connection, settings.agent_builder_ttl_seconds)
        self.jobs = jobs
        self.embedder = embedder
        self.tool_sources = tool_sources

    # Tools

    def tools(self, workspace_id: str) -> list[ToolInfo]:
        """The tools agents of `workspace_id` may call: built-in ones, then each source's."""
        found: dict[str, ToolInfo] = {t.name: t for t in BUILT_IN_TOOLS}
        for source in self.tool_sources:
            for tool in source(workspace_id):
                found.setdefault(tool.name, tool)
        return list(found.values())

    # Use cases

    def create(self) -> View:
        self.access.require(Role.member, "build agents")
        self.sweep()
        now = utcnow()
        row = BuilderSession(
            id=uuid.uuid4(),
            workspace_id=self.access.owned_workspace(),
            owner=None if self.access.is_system else self.access.subject,
            status=SessionStatus.active.value,
            stage=Stage.initial.value,
            fields=empty_fields(),
            suggested_tools=[],
            history=[_said("assistant", question(Stage.initial, {}), Stage.initial, now)],
            created_at=now,
            last_active_at=now,
        )
        with unit_of_work(self.sessions) as session:
            session.add(row)
            session.flush()
            state = LiveState.of(row)
        self.live.put(state)
        return self._view(state)

    def all(self, limit: int = 50, offset: int = 0) -> list[BuilderSession]:
        self.sweep()
        statement = (
            select(BuilderSession)
            .order_by(BuilderSession.created_at.desc())
            .limit(min(limit, MAX_LIST))
            .offset(offset)
        )
        if not self.access.is_system:
            statement = statement.where(BuilderSession.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            return list(session.scalars(statement).all())

    def status(self, session_id: uuid.UUID) -> View:
        self.sweep()
        return self._view(self._load(session_id))

    def message(self, session_id: uuid.UUID, text: str | None, answer: Answer | None) -> View:
        """Apply one message (words the model reads, or a structured answer) and move the
        stage machine on; nothing is stored unless the whole message is applied."""
        self.access.require(Role.member, "build agents")
        if (text is None) == (answer is None):
            raise InvalidInput("send either `text` or `answer`", field="text")
        if text is not None:
            text = _CONTROL.sub("", text).strip()
            if not text:
                raise InvalidInput("the message is empty", field="text")
            if len(text) > MAX_MESSAGE_CHARS:
                raise InvalidInput(
                    f"the message has {len(text)} characters; at most {MAX_MESSAGE_CHARS}",
                    field="text",
                )
        self.sweep()
        state = self._load(session_id)
        if state.status == SessionStatus.completed:
            raise Conflict(f"builder session {session_id} is completed; start a new one")
        if state.status == SessionStatus.abandoned:
            raise Conflict(
                f"builder session {session_id} was abandoned after "
                f"{self.settings.agent_builder_ttl_seconds}s idle; resume it first"
            )
        token = uuid.uuid4().hex
        hold = self.settings.agent_builder_model_timeout_seconds + 30
        if not self.live.lock(session_id, hold, token):
            raise Conflict("a message to this session is still being read; wait for its reply")
        try:
            tools = self.tools(state.workspace_id)
            if text is not None:
                reading = Reader(self._ask(session_id), [t.name for t in tools])
                self._apply_text(state, text, reading.read(Stage(state.stage), text), tools)
            else:
                assert answer is not None
                self._apply_answer(state, answer, tools)
            self._save(state)
        finally:
            self.live.unlock(session_id, token)
        return self._view(state)

    def resume(self, session_id: uuid.UUID) -> View:
        """Bring a session back into Redis from its row: after its key expired, or to reopen
        an abandoned one."""
        self.access.require(Role.member, "build agents")
        self.sweep()
        row_state = self._row_state(session_id)
        if row_state.status == SessionStatus.completed:
            raise Conflict(f"builder session {session_id} is completed; start a new one")
        live = self.live.get(session_id)
        state = live if live is not None and row_state.status == SessionStatus.active else row_state
        if state.status == SessionStatus.abandoned or live is None:
            state.status = SessionStatus.active.value
            now = utcnow()
            text = "Welcome back. " + self._question(state, Stage(state.stage))
            state.history.append(_said("assistant", text, Stage(state.stage), now))
        self._save(state)
        return self._view(state)

    def delete(self, session_id: uuid.UUID) -> None:
        self.access.require(Role.member, "delete builder sessions")
        with unit_of_work(self.sessions) as session:
            row = session.get(BuilderSession, session_id)
            if row is None or not self.access.sees(row.workspace_id):
                raise NotFound(f"builder session {session_id} not found")
            session.delete(row)
        self.live.delete(session_id)

    def mermaid(self, session_id: uuid.UUID) -> str:
        state = self._load(session_id)
        if state.workflow is None:
            raise Conflict("no workflow yet: the agent's type is still unknown")
        return to_mermaid(state.workflow)

    def sweep(self) -> int:
        """Mark sessions idle past the TTL abandoned (their Redis keys expired with it)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.agent_builder_ttl_seconds)
        with unit_of_work(self.sessions) as session:
            result = session.execute(
                update(BuilderSession)
                .where(
                    BuilderSession.status == SessionStatus.active.value,
                    BuilderSession.last_active_at < cutoff,
                )
                .values(status=SessionStatus.abandoned.value, updated_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    # Steps

    def _ask(self, session_id: uuid.UUID) -> Ask:
        """Questions about this session's messages go to the builder's model on the queue."""
        return JobAsk(
            self.jobs,
            self.connection,
            self.settings.agent_builder_model,
            self.settings.agent_builder_model_timeout_seconds,
            conversation=str(session_id),
        )

    def _row_state(self, session_id: uuid.UUID) -> LiveState:
        with self.sessions() as session:
            row = session.get(BuilderSession, session_id)
            if row is None or not self.access.sees(row.workspace_id):
                raise NotFound(f"builder session {session_id} not found")
            return LiveState.of(row)

    def _load(self, session_id: uuid.UUID) -> LiveState:
        """The live state, or the row's when the key is gone; the row's status wins."""
        row_state = self._row_state(session_id)
        if row_state.status != SessionStatus.active:
            self.live.delete(session_id)
            return row_state
        live = self.live.get(session_id)
        if live is None:  # Redis lost it before the sweep saw it idle: the row is as new
            live = row_state
            self.live.put(live)
        return live

    def _save(self, state: LiveState) -> None:
        state.last_active_at = utcnow().isoformat()
        with unit_of_work(self.sessions) as session:
            row = session.get(BuilderSession, uuid.UUID(state.id))
            if row is None:
                raise NotFound(f"builder session {state.id} was deleted meanwhile")
            state.write_to(row)
        if state.status == SessionStatus.active:
            self.live.put(state)
        else:
            self.live.delete(uuid.UUID(state.id))

    def _apply_text(
        self, state: LiveState, text: str, reading: Reading, tools: list[ToolInfo]
    ) -> None:
        stage = Stage(state.stage)
        now = utcnow()
        state.history.append(_said("user", text, stage, now, accepted=reading.values))
        before = dict(state.fields)
        for name, value in reading.values.items():
            if name == "tools" and value != UNKNOWN:
                self._check_tools(value, tools)
            state.fields[name] = value
        if stage is Stage.tools and "tools" not in reading.values and reading.change is None:
            if reading.tools_decision == "accept":
                state.fields["tools"] = list(state.suggested_tools)
            elif reading.tools_decision == "none":
                state.fields["tools"] = []
        confirm = stage is Stage.review and reading.change is None and reading.confirm == "yes"
        asked_again = []
        field_of_stage = {Stage.agent_type: "agent_type", Stage.goals: "goals",
                          Stage.tone: "tone", Stage.tools: "tools",
                          Stage.workflow: "human_review"}.get(stage)  # fmt: skip
        if field_of_stage and reading.change is None and not known(state.fields, field_of_stage):
            asked_again = [field_of_stage]
        self._advance(state, before, tools, confirm=confirm, asked_again=asked_again)

    def _apply_answer(self, state: LiveState, answer: Answer, tools: list[ToolInfo]) -> None:
        stage = Stage(state.stage)
        values: dict[str, Any] = {}
        if answer.agent_type is not None:
            if answer.agent_type not in AGENT_TYPES:
                raise InvalidInput(
                    f"unknown agent type {answer.agent_type!r}; one of {', '.join(AGENT_TYPES)}",
                    field="answer.agent_type",
                )
            values["agent_type"] = answer.agent_type
        if answer.goals is not None:
            goals = [" ".join(_CONTROL.sub("", g).split()) for g in answer.goals if g.strip()]
            if not 1 <= len(goals) <= MAX_GOALS or any(len(g) > MAX_GOAL_CHARS for g in goals):
                raise InvalidInput(
                    f"give 1 to {MAX_GOALS} goals of at most {MAX_GOAL_CHARS} characters",
                    field="answer.goals",
                )
            values["goals"] = goals
        if answer.tone is not None:
            if answer.tone not in TONES:
                raise InvalidInput(
                    f"unknown tone {answer.tone!r}; one of {', '.join(TONES)}", field="answer.tone"
                )
            values["tone"] = answer.tone
        if answer.tools is not None:
            self._check_tools(answer.tools, tools)
            values["tools"] = list(dict.fromkeys(answer.tools))
        if answer.human_review is not None:
            values["human_review"] = "yes" if answer.human_review else "no"
        if answer.confirm and (stage is not Stage.review or values):
            names = ", ".join(LABELS[n] for n in missing({**state.fields, **values})) or "nothing"
            raise InvalidInput(
                f"confirm only at the review stage, alone; still missing: {names}",
                field="answer.confirm",
            )
        if not values and not answer.confirm:
            raise InvalidInput("the answer sets nothing", field="answer")
        before = dict(state.fields)
        shown = {k: v for k, v in values.items()}
        if answer.confirm:
            shown["confirm"] = True
        state.history.append(_said("user", _describe(shown), stage, utcnow(), accepted=values))
        state.fields.update(values)
        self._advance(state, before, tools, confirm=bool(answer.confirm), asked_again=[])

    def _check_tools(self, names: Sequence[str], tools: list[ToolInfo]) -> None:
        available = {t.name for t in tools}
        unknown = [n for n in names if n not in available]
        if unknown:
            raise InvalidInput(
                f"no tool named {', '.join(map(repr, unknown))} exists in this workspace; "
                f"available: {', '.join(sorted(available))}",
                field="tools",
            )

    def _advance(
        self,
        state: LiveState,
        before: dict[str, Any],
        tools: list[ToolInfo],
        *,
        confirm: bool,
        asked_again: list[str],
    ) -> None:
        """Pick the next stage, refresh suggestions and drafts, and say what comes next."""
        if state.fields.get("goals") != before.get("goals") and known(state.fields, "goals"):
            state.suggested_tools = suggest_tools(self.embedder(), state.fields["goals"], tools)
        self._draft(state, tools)
        stage = next_stage(state.fields)
        now = utcnow()
        if confirm and stage is Stage.review:
            self._complete(state, tools)
            stage = Stage.completed
            state.status = SessionStatus.completed.value
            state.completed_at = now.isoformat()
            reply = "Done: the agent's prompt, tools and workflow are saved."
        else:
            reply = self._question(state, stage, asked_again)
            changed = {k: v for k, v in state.fields.items() if before.get(k) != v}
            if changed:
                reply = f"Noted ({_describe(changed)}). {reply}"
        state.stage = stage.value
        state.history.append(_said("assistant", reply, stage, now))

    def _question(
        self, state: LiveState, stage: Stage, asked_again: list[str] | None = None
    ) -> str:
        text = question(stage, state.fields, asked_again)
        if stage is Stage.tools:
            suggested = ", ".join(state.suggested_tools) or "none"
            text += f" Suggested from your goals: {suggested}."
        return text

    def _draft(self, state: LiveState, tools: list[ToolInfo]) -> None:
        state.workflow = build_workflow(state.fields, tools)
        chosen = state.fields["tools"] if known(state.fields, "tools") else []
        state.tools_config = tools_config(
            [n for n in chosen if n in {t.name for t in tools}], tools
        )
        state.final_prompt = final_prompt(state.fields, tools)

    def _complete(self, state: LiveState, tools: list[ToolInfo]) -> None:
        """Check the outputs against the tools that exist now; refuse, naming why, if not."""
        self._check_tools(state.fields["tools"], tools)
        assert state.workflow is not None
        validate_workflow(state.workflow, tools=[t.name for t in tools])

    def _view(self, state: LiveState) -> View:
        stage = Stage(state.stage)
        last = next(
            (h["text"] for h in reversed(state.history) if h["role"] == "assistant"),
            self._question(state, stage),
        )
        return View(state, missing(state.fields), last, self.tools(state.workspace_id))


def _said(
    role: str, text: str, stage: Stage, at: datetime, accepted: dict[str, Any] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": role, "text": text, "stage": stage.value, "at": at.isoformat()}
    if accepted is not None:
        entry["accepted"] = accepted
    return entry


def _describe(values: dict[str, Any]) -> str:
    return "; ".join(
        f"{name.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
        for name, v in values.items()
    )
