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
from collections.abc import Mapping
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
from citeline.errors import ServiceUnavailable
from citeline.jobs.events import EVENTS, JOBS, Event, EventLog
from citeline.jobs.models import ACTIVE_STATES, JobState
from citeline.jobs.queue import cancel_key, queue, rq_job_id

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
        )

    def finish(
        self,
        job_id: uuid.UUID,
        attempt: int,
        result: Any,
        pipe: redis.client.Pipeline | None = None,
    ) -> Event | None:
        now = utcnow()
        return self.events.append(
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
        return self.events.append(
            job_id,
            "failed",
            {"attempt": attempt, "reason": reason, **({"error": dict(error)} if error else {})},
            changes={"state": JobState.failed.value, "error": reason, "finished_at": utcnow()},
            if_states=[JobState.started],
            if_attempt=attempt,
        )

    def stop(self, job_id: uuid.UUID, reason: str) -> Event | None:
        """Stop a job that has not ended; the worker running it (if any) notices the flag."""
        self.redis.set(cancel_key(job_id), reason, ex=86400)
        return self.events.append(
            job_id,
            "stopped",
            {"reason": reason},
            changes={"state": JobState.stopped.value, "error": reason, "finished_at": utcnow()},
            if_states=list(ACTIVE_STATES),
        )
