"""Conversations with the assistant, for a caller: start one, send a message (a run on the
queue), read runs and their state, approve or deny a tool call, cancel, delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from citeline.assistant.auditing import decision_entry
from citeline.assistant.job import RUN
from citeline.assistant.models import (
    AssistantConversation,
    AssistantMessage,
    AssistantRun,
    AssistantToolCall,
    RunState,
)
from citeline.assistant.state import LiveState
from citeline.auth import Access, Role, audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from citeline.jobs.models import JobState
from citeline.jobs.service import JobService
from citeline.knowledge import KnowledgeService
from citeline.settings import Settings

MAX_LIST = 200


@dataclass(frozen=True)
class Sent:
    message: AssistantMessage
    run: AssistantRun


@dataclass(frozen=True)
class RunView:
    run: AssistantRun
    state: str  # the live state when Redis still has it, else the recorded one
    pending: list[dict[str, Any]]
    buffer: str
    live: bool  # read from Redis
    tool_calls: list[AssistantToolCall]


class AssistantService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        jobs: JobService,
        knowledge: KnowledgeService,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.connection = connection
        self.jobs = jobs
        self.knowledge = knowledge
        self.settings = settings
        self.access: Access = knowledge.access
        self.live = LiveState(connection, settings.assistant_state_ttl_seconds)

    # Conversations

    def create(
        self,
        *,
        title: str = "",
        model: str = "assistant",
        knowledge_bases: list[str] | None = None,
        tools: list[str] | None = None,
        system_prompt: str = "",
    ) -> AssistantConversation:
        self.access.require(Role.member, "start assistant conversations")
        bases = [str(self.knowledge.get(ref).id) for ref in dict.fromkeys(knowledge_bases or [])]
        conversation = AssistantConversation(
            id=uuid.uuid4(),
            workspace_id=self.access.owned_workspace(),
            owner=None if self.access.is_system else self.access.subject,
            title=" ".join(title.split()),
            model=model,
            knowledge_base_ids=bases,
            tools=None if tools is None else list(dict.fromkeys(tools)),
            system_prompt=system_prompt.strip(),
        )
        with unit_of_work(self.sessions) as session:
            session.add(conversation)
            session.flush()
            session.expunge(conversation)
        return conversation

    def all(self, limit: int = 50, offset: int = 0) -> list[AssistantConversation]:
        statement = (
            select(AssistantConversation)
            .order_by(AssistantConversation.updated_at.desc(), AssistantConversation.id)
            .limit(min(limit, MAX_LIST))
            .offset(offset)
        )
        if not self.access.is_system:
            statement = statement.where(
                AssistantConversation.workspace_id == self.access.workspace_id
            )
        with self.sessions() as session:
            return list(session.scalars(statement))

    def get(self, conversation_id: uuid.UUID) -> AssistantConversation:
        with self.sessions() as session:
            row = session.get(AssistantConversation, conversation_id)
            if row is None or not self.access.sees(row.workspace_id):
                raise NotFound(f"conversation {conversation_id} not found")
            session.expunge(row)
        return row

    def messages(self, conversation_id: uuid.UUID) -> list[AssistantMessage]:
        self.get(conversation_id)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(AssistantMessage)
                    .where(AssistantMessage.conversation_id == conversation_id)
                    .order_by(AssistantMessage.ordinal)
                )
            )

    def runs(self, conversation_id: uuid.UUID) -> list[AssistantRun]:
        self.get(conversation_id)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(AssistantRun)
                    .where(AssistantRun.conversation_id == conversation_id)
                    .order_by(AssistantRun.created_at)
                )
            )

    def delete(self, conversation_id: uuid.UUID) -> None:
        conversation = self.get(conversation_id)
        self.access.require(Role.member, "delete assistant conversations")
        runs = self.runs(conversation_id)
        for run in runs:
            if not RunState(run.state).ended and run.job_id is not None:
                self.jobs.cancel(run.job_id, "conversation deleted")
        with unit_of_work(self.sessions) as session:
            session.execute(
                delete(AssistantConversation).where(AssistantConversation.id == conversation_id)
            )
            audit.add(
                session,
                audit.Entry(
                    "assistant.conversation.delete",
                    self.access.subject,
                    conversation.workspace_id,
                    f"assistant_conversation:{conversation_id}",
                    detail={"title": conversation.title[:200]},
                ),
            )
        self.live.forget(conversation_id, [run.id for run in runs])

    # Runs

    def send(self, conversation_id: uuid.UUID, content: str) -> Sent:
        """Record the user's message and queue the run that answers it."""
        conversation = self.get(conversation_id)
        self.access.require(Role.member, "send messages to the assistant")
        limit = self.settings.assistant_max_message_chars
        if len(content) > limit:
            raise PayloadTooLarge(
                f"the message has {len(content)} characters; the limit is {limit}"
            )
        if not content.strip():
            raise InvalidInput("the message is empty", field="content")
        self._count_message(conversation_id)
        with unit_of_work(self.sessions) as session:
            busy = session.scalar(
                select(AssistantRun.id).where(
                    AssistantRun.conversation_id == conversation_id,
                    AssistantRun.state.notin_([s.value for s in RunState if s.ended]),
                )
            )
            if busy is not None and not self._settle(session, session.get_one(AssistantRun, busy)):
                raise Conflict(
                    f"conversation {conversation_id} is still answering (run {busy}); wait "
                    "for it or cancel it"
                )
            last = session.scalar(
                select(func.max(AssistantMessage.ordinal)).where(
                    AssistantMessage.conversation_id == conversation_id
                )
            )
            message = AssistantMessage(
                id=uuid.uuid4(),
                conversation_id=conversation_id,
                ordinal=(last or 0) + 1,
                role="user",
                content=content,
                citations=[],
            )
            session.add(message)
            if not conversation.title:
                session.execute(
                    update(AssistantConversation)
                    .where(AssistantConversation.id == conversation_id)
                    .values(title=" ".join(content.split())[:80], updated_at=utcnow())
                )
            else:
                session.execute(
                    update(AssistantConversation)
                    .where(AssistantConversation.id == conversation_id)
                    .values(updated_at=utcnow())
                )
        # The run's row exists before its job can start.
        run = AssistantRun(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            workspace_id=conversation.workspace_id,
            message_id=message.id,
            state=RunState.idle.value,
            steps=0,
            input_tokens=0,
            output_tokens=0,
        )
        with unit_of_work(self.sessions) as session:
            session.add(run)
            session.execute(
                update(AssistantMessage)
                .where(AssistantMessage.id == message.id)
                .values(run_id=run.id)
            )
        job = self.jobs.enqueue(
            RUN.name,
            {"run_id": str(run.id), "conversation_id": str(conversation_id)},
            workspace_id=conversation.workspace_id,
        )
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(AssistantRun).where(AssistantRun.id == run.id).values(job_id=job.id)
            )
        run.job_id = job.id
        message.run_id = run.id
        self.live.put(run.id, conversation_id, state=RunState.idle.value)
        return Sent(message, run)

    def run(self, run_id: uuid.UUID) -> RunView:
        with self.sessions() as session:
            run = session.get(AssistantRun, run_id)
            if run is None or not self.access.sees(run.workspace_id):
                raise NotFound(f"assistant run {run_id} not found")
            if not RunState(run.state).ended:
                self._settle(session, run)
                session.commit()
                session.refresh(run)
            calls = list(
                session.scalars(
                    select(AssistantToolCall)
                    .where(AssistantToolCall.run_id == run_id)
                    .order_by(AssistantToolCall.created_at)
                )
            )
            session.expunge_all()
        live = self.live.get(run_id)
        recorded = RunState(run.state)
        if recorded.ended:
            return RunView(run, run.state, [], "", live is not None, calls)
        if live is None:  # expired: the records answer
            pending = [
                {"tool_call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                for c in calls
                if c.status == "pending"
            ]
            return RunView(run, run.state, pending, "", False, calls)
        return RunView(
            run,
            str(live.get("state", run.state)),
            list(live.get("pending", [])),
            str(live.get("buffer", "")),
            True,
            calls,
        )

    def decide(self, run_id: uuid.UUID, *, approve: bool) -> RunView:
        """Approve or deny the tool calls the run waits on, and queue the run again (its job
        is suspended while it waits, on no worker)."""
        view = self.run(run_id)
        self.access.require(Role.member, "approve or deny tool calls")
        owner = self.get(view.run.conversation_id).owner
        if owner not in (None, self.access.subject) and not self.access.role >= Role.admin:
            # The call runs as the run's owner, with their own MCP credentials.
            raise Forbidden(
                "only the person who started this conversation, or a workspace admin, may "
                "approve or deny its tool calls"
            )
        until = (view.run.checkpoint or {}).get("until")
        if until is not None and datetime.fromisoformat(until) <= utcnow():
            raise Conflict(
                f"assistant run {run_id}: the time to approve its tool call ended at {until}; "
                "the call is denied"
            )
        going = select(AssistantRun.id).where(
            AssistantRun.id == run_id,
            AssistantRun.state.notin_([s.value for s in RunState if s.ended]),
        )
        with unit_of_work(self.sessions) as session:
            changed = session.execute(
                update(AssistantToolCall)
                .where(
                    AssistantToolCall.run_id.in_(going),
                    AssistantToolCall.status == "pending",
                )
                .values(status="approved" if approve else "denied")
                .returning(
                    AssistantToolCall.id, AssistantToolCall.name, AssistantToolCall.arguments
                )
            ).all()
            for row in changed:  # who let which call run, or stopped it
                audit.add(
                    session, decision_entry(self.access.subject, view.run, row, approve=approve)
                )
        if not changed:
            raise Conflict(f"assistant run {run_id} is not waiting for an approval")
        if view.run.job_id is not None:
            # None when the job is not suspended: still pausing (it queues itself again once
            # paused, seeing the decision), or already queued by the reaper as the approval
            # timed out (that attempt reads this decision first).
            self.jobs.lifecycle.resume(
                view.run.job_id,
                {"decision": "approved" if approve else "denied", "by": self.access.subject},
            )
        return self.run(run_id)

    def cancel(self, run_id: uuid.UUID) -> RunView:
        view = self.run(run_id)
        self.access.require(Role.member, "cancel assistant runs")
        if RunState(view.run.state).ended:
            raise Conflict(f"assistant run {run_id} already ended ({view.run.state})")
        if view.run.job_id is not None:
            self.jobs.cancel(view.run.job_id, "assistant run cancelled")
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(AssistantRun)
                .where(AssistantRun.id == run_id)
                .values(state=RunState.cancelled.value, finished_at=utcnow())
            )
            # A call left waiting for (or decided but not yet run by) a suspended run.
            session.execute(
                update(AssistantToolCall)
                .where(
                    AssistantToolCall.run_id == run_id,
                    AssistantToolCall.status.in_(["pending", "approved", "denied"]),
                    AssistantToolCall.result.is_(None),
                )
                .values(status="cancelled", finished_at=utcnow())
            )
        self.live.put(run_id, view.run.conversation_id, state=RunState.cancelled.value, pending=[])
        return self.run(run_id)

    def _settle(self, session: Session, run: AssistantRun) -> bool:
        """Bring a run in line with its job (one that failed or stopped outside the loop's
        own code); True if it has ended."""
        if run.job_id is None:
            return False
        job = self.jobs.get(run.job_id)
        if job.state not in (JobState.failed.value, JobState.stopped.value):
            return False
        session.execute(
            update(AssistantRun)
            .where(AssistantRun.id == run.id)
            .values(
                state=RunState.error.value
                if job.state == JobState.failed.value
                else RunState.cancelled.value,
                error=job.error,
                finished_at=job.finished_at or utcnow(),
            )
        )
        return True

    def _count_message(self, conversation_id: uuid.UUID) -> None:
        per_minute = self.settings.assistant_messages_per_minute
        if per_minute == 0:
            return
        storage = RedisStorage(
            "redis://",
            connection_pool=self.connection.connection_pool,
            key_prefix="citeline:limits",
        )
        limiter = SlidingWindowCounterRateLimiter(storage)
        item = RateLimitItemPerMinute(per_minute)
        key = ("assistant-session", str(conversation_id))
        if limiter.hit(item, *key):
            return
        stats = limiter.get_window_stats(item, *key)
        retry = max(1, round(stats.reset_time - utcnow().timestamp()))
        raise RateLimited(
            f"too many messages in this conversation: the limit is {per_minute} per minute; "
            f"try again in {retry} s",
            retry_after=retry,
            limit=per_minute,
            reset=retry,
        )
