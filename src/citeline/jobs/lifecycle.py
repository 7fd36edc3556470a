"""State changes of a job that more than one process may attempt: enqueue an attempt, start,
finish, fail or retry, stop. Each is one guarded transaction plus its event, so exactly one of
several racing writers wins.

Worker processes commit without waiting for the WAL flush (see `Resources.connect`): if
PostgreSQL itself crashes in the next fraction of a second, an outcome may be lost and the reaper
runs the attempt again (at-least-once). Acknowledgements to users (enqueue, cancel) come from
the API and CLI, which always wait for the flush."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import (
    DateTime,
    Executable,
    String,
    Uuid,
    bindparam,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import ServiceUnavailable
from citeline.jobs.context import JobCancelled
from citeline.jobs.events import EVENTS, JOBS, Event, EventLog
from citeline.jobs.fanout import Child, FailureRule, FollowUp, cancel_groups, open_group
from citeline.jobs.models import ACTIVE_STATES, TERMINAL_STATES, JobState
from citeline.jobs.queue import cancel_key, queue, rq_job_id
from citeline.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
RQ_RESULT_TTL = 3600


@dataclass(frozen=True)
class Started:
    """What a worker needs of a job it has just started, read in the same statement."""

    event: Event
    kind: str
    args: dict[str, Any]
    owner: str | None
    workspace_id: str | None
    max_attempts: int
    trace_context: dict[str, str] | None
    parent_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Attempt:
    job_id: uuid.UUID
    attempt: int
    queue: str
    target: str
    timeout_seconds: int


def _start_statement() -> Executable:
    job_id = bindparam("p_job_id", type_=Uuid())
    now = bindparam("p_now", type_=DateTime(timezone=True))
    bump = (
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.attempt == bindparam("p_attempt"),
            JOBS.c.state.in_([JobState.queued.value, JobState.scheduled.value]),
        )
        .values(
            state=JobState.started.value,
            started_at=now,
            error=None,
            event_seq=JOBS.c.event_seq + 1,
            updated_at=now,
        )
        .returning(
            JOBS.c.event_seq,
            JOBS.c.kind,
            JOBS.c.args,
            JOBS.c.owner,
            JOBS.c.workspace_id,
            JOBS.c.max_attempts,
            JOBS.c.trace_context,
            JOBS.c.parent_id,
        )
        .cte("bump")
    )
    recorded = (
        insert(EVENTS)
        .from_select(
            ["job_id", "seq", "type", "data", "created_at"],
            select(
                job_id,
                bump.c.event_seq,
                literal("started", String()),
                bindparam("p_data", type_=JSONB()),
                now,
            ),
        )
        .returning(EVENTS.c.seq)
        .cte("recorded")
    )
    return select(bump, recorded.c.seq).select_from(bump.join(recorded, true()))


# Starting an attempt: the guarded update, its event and the job's fields, one statement.
_START = _start_statement()


class Lifecycle:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        events: EventLog,
        *,
        backoff_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.events = events
        self.backoff_seconds = backoff_seconds

    def push(self, attempt: Attempt) -> None:
        """Put one attempt on its RQ queue; the job row already says `queued` for it."""
        from citeline.jobs.runtime import run_job

        try:
            queue(attempt.queue, self.redis).enqueue_call(
                run_job,
                args=(str(attempt.job_id), attempt.attempt, attempt.target),
                job_id=rq_job_id(attempt.job_id, attempt.attempt),
                timeout=attempt.timeout_seconds,
                result_ttl=RQ_RESULT_TTL,
                failure_ttl=RQ_RESULT_TTL,
                description=f"citeline job {attempt.job_id} attempt {attempt.attempt}",
            )
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"queue unavailable: {exc}") from exc

    def start(self, job_id: uuid.UUID, attempt: int) -> Started | None:
        """Move the attempt from queued (or a due retry) to started, in one statement that
        also records the event and reads the job; None when someone else ended it."""
        now = utcnow()
        payload = {"attempt": attempt}
        rows = self.events.statements.run(
            _START,
            {"p_job_id": job_id, "p_attempt": attempt, "p_now": now, "p_data": payload},
        )
        if not rows:
            return None
        row = rows[0]
        return Started(
            Event(job_id, row.seq, "started", payload, now),
            row.kind,
            row.args,
            row.owner,
            row.workspace_id,
            row.max_attempts,
            row.trace_context,
            row.parent_id,
        )

    def finish(
        self,
        job_id: uuid.UUID,
        attempt: int,
        result: Any,
        pipe: redis.client.Pipeline | None = None,
    ) -> Event | None:
        now = utcnow()
        event = self.events.append(
            job_id,
            "finished",
            {"attempt": attempt},
            changes={
                "state": JobState.finished.value,
                "result": result,
                "progress": 1.0,
                "finished_at": now,
                "error": None,
            },
            if_states=[JobState.started],
            if_attempt=attempt,
            pipe=pipe,
        )
        self._ended(event, result=result)
        return event

    def fail_or_retry(
        self,
        job_id: uuid.UUID,
        attempt: int,
        max_attempts: int,
        reason: str,
        *,
        retry: bool,
        error: Mapping[str, Any] | None = None,
    ) -> Event | None:
        """Schedule the next attempt with exponential backoff, or fail the job with `reason`."""
        if retry and attempt < max_attempts:
            delay = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (attempt - 1))
            return self.events.append(
                job_id,
                "retrying",
                {
                    "attempt": attempt,
                    "next_attempt": attempt + 1,
                    "delay_seconds": delay,
                    "reason": reason,
                },
                changes={
                    "state": JobState.scheduled.value,
                    "attempt": attempt + 1,
                    "run_at": utcnow() + timedelta(seconds=delay),
                    "error": reason,
                },
                if_states=[JobState.started],
                if_attempt=attempt,
            )
        event = self.events.append(
            job_id,
            "failed",
            {"attempt": attempt, "reason": reason, **({"error": dict(error)} if error else {})},
            changes={"state": JobState.failed.value, "error": reason, "finished_at": utcnow()},
            if_states=[JobState.started],
            if_attempt=attempt,
        )
        self._ended(event, reason=reason, error=error)
        return event

    def stop(self, job_id: uuid.UUID, reason: str) -> Event | None:
        """Stop a job that has not ended, and everything it waits for (its children and their
        follow-up); a worker running one of them notices the flag."""
        self.redis.set(cancel_key(job_id), reason, ex=86400)
        with unit_of_work(self.sessions) as session:
            below = cancel_groups(session, job_id)
        for descendant in below:
            self.stop(descendant, reason)
        event = self.events.append(
            job_id,
            "stopped",
            {"reason": reason},
            changes={"state": JobState.stopped.value, "error": reason, "finished_at": utcnow()},
            if_states=list(ACTIVE_STATES),
        )
        self._ended(event, reason=reason)
        return event

    def resume(self, job_id: uuid.UUID, data: Mapping[str, Any] | None = None) -> Event | None:
        """Queue a suspended job's next attempt (without using one up); None when the job is
        not suspended (already resumed, or stopped)."""
        with unit_of_work(self.sessions) as session:
            row = session.execute(
                select(
                    JOBS.c.attempt, JOBS.c.max_attempts, JOBS.c.queue, JOBS.c.target,
                    JOBS.c.timeout_seconds,
                )
                .where(JOBS.c.id == job_id, JOBS.c.state == JobState.suspended.value)
                .with_for_update()
            ).first()  # fmt: skip
            if row is None:
                return None
            event = self.events.append_in(
                session,
                job_id,
                "resumed",
                {**(data or {}), "attempt": row.attempt + 1},
                changes={
                    "state": JobState.queued.value,
                    "attempt": row.attempt + 1,
                    "max_attempts": row.max_attempts + 1,
                    "enqueued_at": utcnow(),
                },
                if_states=[JobState.suspended],
                if_attempt=row.attempt,
            )
        if event is None:
            return None
        self.events.publish(event)
        self._push_safely(
            Attempt(job_id, row.attempt + 1, row.queue, row.target, row.timeout_seconds)
        )
        return event

    # fan-out and fan-in (see jobs.fanout)

    def fan_out(
        self,
        settings: Settings,
        *,
        parent_id: uuid.UUID,
        attempt: int,
        workspace_id: str | None,
        owner: str | None,
        children: Sequence[Child],
        then: FollowUp,
        on_failure: FailureRule = "continue",
    ) -> uuid.UUID:
        """Record the children and move the running parent to `waiting`, in one transaction;
        then queue the children. Raises JobCancelled when the parent no longer runs."""
        with unit_of_work(self.sessions) as session:
            opened = open_group(
                session, settings, parent_id=parent_id, workspace_id=workspace_id,
                owner=owner, children=children, then=then, on_failure=on_failure,
            )  # fmt: skip
            waiting = self.events.append_in(
                session,
                parent_id,
                "waiting",
                {"group_id": str(opened.group_id), "children": len(children)},
                changes={"state": JobState.waiting.value},
                if_states=[JobState.started],
                if_attempt=attempt,
            )
            if waiting is None:
                raise _no_longer_running(parent_id)
        self.events.publish(waiting)
        for queued in [*opened.children, *filter(None, [opened.follow_up_now])]:
            self._push_safely(Attempt(queued.job_id, 1, queued.queue, queued.target,
                                      queued.timeout_seconds))  # fmt: skip
        return opened.group_id

    def _ended(
        self,
        event: Event | None,
        *,
        result: Any = None,
        reason: str | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        """After a job ended: queue its group's follow-up if it was the last child; stop its
        siblings if it failed in a group that says so; end the job waiting on it if it was a
        follow-up, as it ended."""
        if event is None:
            return
        child = event.child
        if child is not None:
            if child.follow_up is not None:
                fu = child.follow_up
                self._push_safely(Attempt(fu.job_id, 1, fu.queue, fu.target, fu.timeout_seconds))
            elif event.type == "failed" and child.on_failure == "cancel":
                for sibling in self._active_children(child.group_id):
                    self.stop(sibling, f"job {event.job_id} of its group failed")
        elif event.follow_up_of is not None:
            self._end_waiting(event.follow_up_of, event, result, reason, error)

    def _end_waiting(
        self,
        parent_id: uuid.UUID,
        follow_up: Event,
        result: Any,
        reason: str | None,
        error: Mapping[str, Any] | None,
    ) -> None:
        now = utcnow()
        data: dict[str, Any] = {"follow_up": str(follow_up.job_id)}
        if follow_up.type == "finished":
            changes: dict[str, Any] = {
                "state": JobState.finished.value, "result": result, "progress": 1.0,
                "finished_at": now, "error": None,
            }  # fmt: skip
        else:
            data["reason"] = reason
            if error:
                data["error"] = dict(error)
            changes = {"state": follow_up.type, "error": reason, "finished_at": now}
        ended = self.events.append(
            parent_id, follow_up.type, data, changes=changes, if_states=[JobState.waiting]
        )
        self._ended(ended, result=result, reason=reason, error=error)

    def end_waiting_as(self, parent_id: uuid.UUID, follow_up_id: uuid.UUID) -> Event | None:
        """End a waiting job as its ended follow-up did (the reaper's repair when the process
        that ended the follow-up died before ending the parent)."""
        with self.sessions() as session:
            row = session.execute(
                select(JOBS.c.state, JOBS.c.result, JOBS.c.error).where(JOBS.c.id == follow_up_id)
            ).first()
        if row is None or row.state not in {s.value for s in TERMINAL_STATES}:
            return None
        event = Event(follow_up_id, 0, row.state, {}, utcnow())
        self._end_waiting(parent_id, event, row.result, row.error, None)
        return event

    def _active_children(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        active = [state.value for state in ACTIVE_STATES]
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(JOBS.c.id).where(JOBS.c.group_id == group_id, JOBS.c.state.in_(active))
                )
            )

    def _push_safely(self, attempt: Attempt) -> None:
        """Queue an attempt already recorded as queued; if Redis fails now, the reaper queues it
        again (it looks for queued jobs the queue does not know)."""
        try:
            self.push(attempt)
        except ServiceUnavailable as exc:
            log.warning(
                "recorded job not queued yet; the reaper will",
                extra={"job": str(attempt.job_id), "error": exc.detail},
            )


def _no_longer_running(job_id: uuid.UUID) -> JobCancelled:
    return JobCancelled(f"job {job_id} is no longer running this attempt")
