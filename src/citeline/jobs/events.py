"""Each job's ordered events: kept in the database, mirrored to a Redis Stream for live readers.

The sequence number comes from the job row (`event_seq`), so it is gap-free and ordered even when
several processes emit for one job. The stream entry for event `n` has the id `0-n`; a writer that
loses the race to the stream leaves a gap there, which readers fill from the database.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import (
    DateTime,
    Executable,
    Float,
    Integer,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import Statements
from citeline.jobs.models import Job, JobEvent, JobGroup, JobState
from citeline.jobs.queue import events_key

log = logging.getLogger(__name__)

JOBS: Table = Job.__table__  # type: ignore[assignment]
EVENTS: Table = JobEvent.__table__  # type: ignore[assignment]
GROUPS: Table = JobGroup.__table__  # type: ignore[assignment]
TERMINAL_EVENT_TYPES = frozenset({"finished", "failed", "stopped"})


@dataclass(frozen=True)
class FollowUpQueued:
    """The follow-up a group's last child recorded: to put on the queue once committed."""

    job_id: uuid.UUID
    queue: str
    target: str
    timeout_seconds: int


@dataclass(frozen=True)
class ChildEnded:
    """A child's end, as its group counted it."""

    group_id: uuid.UUID
    parent_id: uuid.UUID
    ended: int
    total: int
    failed: int
    on_failure: str
    follow_up: FollowUpQueued | None


@dataclass(frozen=True)
class Event:
    job_id: uuid.UUID
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime
    child: ChildEnded | None = None  # when a group's child ended
    follow_up_of: uuid.UUID | None = None  # when a follow-up ended: the job waiting for it

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "job_id": str(self.job_id),
            "data": self.data,
            "created_at": self.created_at.isoformat(),
        }


class EventLog:
    """Appends events (optionally with a guarded state change) and reads them back."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        redis_client: redis.Redis,
        stream_ttl: int,
        statements: Statements,
    ) -> None:
        self.sessions = sessions
        self.redis = redis_client
        self.stream_ttl = stream_ttl
        self.statements = statements  # the hot path's state changes

    def append(
        self,
        job_id: uuid.UUID,
        type_: str,
        data: Mapping[str, Any] | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        if_states: Sequence[JobState] | None = None,
        if_attempt: int | None = None,
        pipe: redis.client.Pipeline | None = None,
    ) -> Event | None:
        """Record one event, applying `changes` to the job in the same transaction.

        With `if_states` or `if_attempt`, nothing happens (None is returned) unless the job is
        still in one of those states and attempt: that is how racing writers (a worker finishing,
        a user cancelling, the reaper) agree on a single outcome. The event is mirrored to Redis
        at once, or into `pipe` for the caller to send.
        """
        payload = dict(data or {})
        now = utcnow()
        change_values = dict(changes or {})
        terminal = type_ in TERMINAL_EVENT_TYPES
        statement = _append_statement(
            tuple(sorted(change_values)), if_states is not None, if_attempt is not None, terminal
        )
        params = _params(job_id, type_, payload, now, change_values, if_states, if_attempt)
        rows = self.statements.run(statement, params)
        if not rows:
            return None
        event = _event(rows[0], job_id, type_, payload, now, terminal)
        self.publish(event, pipe)
        return event

    def append_in(
        self,
        session: Session,
        job_id: uuid.UUID,
        type_: str,
        data: Mapping[str, Any] | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        if_states: Sequence[JobState] | None = None,
        if_attempt: int | None = None,
    ) -> Event | None:
        """`append` inside the caller's transaction; the caller publishes once it commits."""
        payload = dict(data or {})
        now = utcnow()
        change_values = dict(changes or {})
        terminal = type_ in TERMINAL_EVENT_TYPES
        statement = _append_statement(
            tuple(sorted(change_values)), if_states is not None, if_attempt is not None, terminal
        )
        params = _params(job_id, type_, payload, now, change_values, if_states, if_attempt)
        row = session.connection().execute(statement, params).first()
        return None if row is None else _event(row, job_id, type_, payload, now, terminal)

    def publish(self, event: Event, pipe: redis.client.Pipeline | None = None) -> None:
        """Mirror `event` to its Redis Stream; into `pipe` when given (the caller executes it,
        with its own writes, in one round trip)."""
        own = pipe is None
        target = self.redis.pipeline(transaction=False) if pipe is None else pipe
        key = events_key(event.job_id)
        fields = {"type": event.type, "event": json.dumps(event.as_json())}
        target.xadd(key, fields, id=f"0-{event.seq}")  # type: ignore[arg-type]
        target.expire(key, self.stream_ttl)
        if own:
            run_pipeline(target, f"event of job {event.job_id}")

    def read(
        self, job_id: uuid.UUID, *, after: int = 0, until: int | None = None, limit: int = 1000
    ) -> list[Event]:
        with self.sessions() as session:
            statement = (
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.seq > after)
                .order_by(JobEvent.seq)
                .limit(limit)
            )
            if until is not None:
                statement = statement.where(JobEvent.seq < until)
            rows = session.scalars(statement).all()
            return [Event(row.job_id, row.seq, row.type, row.data, row.created_at) for row in rows]


@functools.lru_cache(maxsize=128)
def _append_statement(
    change_keys: tuple[str, ...], guard_states: bool, guard_attempt: bool, terminal: bool
) -> Executable:
    """The guarded update and the event insert as one statement (one round trip), built once
    per shape and bound with values at each call. It is written on the tables, not the mapped
    classes: the ORM's bulk machinery costs more than the SQL.

    A terminal event also counts the job in its group, if it is a child, and when it is the
    group's last child records the group's follow-up job with its first event: the fan-in
    happens in the same statement, so exactly once, whichever child ends last and however."""
    job_id = bindparam("p_job_id", type_=Uuid())
    now = bindparam("p_now", type_=DateTime(timezone=True))
    statement = update(JOBS).where(JOBS.c.id == job_id)
    if guard_states:
        statement = statement.where(JOBS.c.state.in_(bindparam("p_states", expanding=True)))
    if guard_attempt:
        statement = statement.where(JOBS.c.attempt == bindparam("p_attempt"))
    values: dict[str, Any] = {"event_seq": JOBS.c.event_seq + 1, "updated_at": now}
    for key in change_keys:
        values[key] = bindparam(f"p_set_{key}", type_=JOBS.c[key].type)
    bump = (
        statement.values(values)
        .returning(JOBS.c.event_seq, JOBS.c.group_id, JOBS.c.parent_id)
        .cte("bump")
    )
    recorded = (
        insert(EVENTS)
        .from_select(
            ["job_id", "seq", "type", "data", "created_at"],
            select(
                job_id,
                bump.c.event_seq,
                bindparam("p_type", type_=String()),
                bindparam("p_data", type_=JSONB()),
                now,
            ),
        )
        .returning(EVENTS.c.seq)
    )
    if not terminal:
        return recorded
    ev = recorded.cte("ev")
    group = (
        update(GROUPS)
        .where(GROUPS.c.id == bump.c.group_id)
        .values(
            ended=GROUPS.c.ended + 1,
            failed=GROUPS.c.failed + bindparam("p_failed", type_=Integer()),
            stopped=GROUPS.c.stopped + bindparam("p_stopped", type_=Integer()),
        )
        .returning(*GROUPS.c)
        .cte("grp")
    )
    closing = (group.c.ended == group.c.total) & group.c.cancelled_at.is_(None)
    follow_up = (
        pg_insert(JOBS)
        .from_select(
            [
                "id", "kind", "target", "queue", "state", "owner", "workspace_id", "args",
                "progress", "attempt", "max_attempts", "timeout_seconds", "event_seq",
                "created_at", "enqueued_at", "updated_at", "parent_id",
            ],
            select(
                group.c.follow_up_id, group.c.follow_up_kind, group.c.follow_up_target,
                group.c.follow_up_queue, literal(JobState.queued.value, String()),
                group.c.owner, group.c.workspace_id, group.c.follow_up_args,
                literal(0.0, Float()), literal(1, Integer()), group.c.follow_up_attempts,
                group.c.follow_up_timeout, literal(1, Integer()), now, now, now,
                group.c.parent_id,
            ).where(closing),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(JOBS.c.id, JOBS.c.queue, JOBS.c.target, JOBS.c.timeout_seconds)
        .cte("fu")
    )  # fmt: skip
    queued = (
        insert(EVENTS)
        .from_select(
            ["job_id", "seq", "type", "data", "created_at"],
            select(
                follow_up.c.id,
                literal(1, Integer()),
                literal("queued", String()),
                func.jsonb_build_object("attempt", 1, "queue", follow_up.c.queue),
                now,
            ),
        )
        .cte("fu_event")
    )
    return (
        select(
            ev.c.seq,
            bump.c.group_id.label("job_group_id"),
            bump.c.parent_id.label("job_parent_id"),
            group.c.id.label("group_id"),
            group.c.parent_id,
            group.c.ended,
            group.c.total,
            group.c.failed,
            group.c.on_failure,
            follow_up.c.id.label("follow_up_id"),
            follow_up.c.queue.label("follow_up_queue"),
            follow_up.c.target.label("follow_up_target"),
            follow_up.c.timeout_seconds.label("follow_up_timeout"),
        )
        .select_from(ev)
        .join(bump, true())
        .outerjoin(group, true())
        .outerjoin(follow_up, true())
        .add_cte(queued)
    )


def _params(
    job_id: uuid.UUID,
    type_: str,
    payload: dict[str, Any],
    now: datetime,
    changes: dict[str, Any],
    if_states: Sequence[JobState] | None,
    if_attempt: int | None,
) -> dict[str, Any]:
    # Parameter names differ from the columns': an UPDATE takes a bind parameter named like a
    # column as a value to SET.
    params: dict[str, Any] = {
        "p_job_id": job_id,
        "p_type": type_,
        "p_data": payload,
        "p_now": now,
        **{f"p_set_{key}": value for key, value in changes.items()},
    }
    if if_states is not None:
        params["p_states"] = [state.value for state in if_states]
    if if_attempt is not None:
        params["p_attempt"] = if_attempt
    if type_ in TERMINAL_EVENT_TYPES:
        params["p_failed"] = int(type_ == "failed")
        params["p_stopped"] = int(type_ == "stopped")
    return params


def _event(
    row: Any,
    job_id: uuid.UUID,
    type_: str,
    payload: dict[str, Any],
    now: datetime,
    terminal: bool,
) -> Event:
    if not terminal:
        return Event(job_id, row.seq, type_, payload, now)
    follow_up_of = row.job_parent_id if row.job_group_id is None else None
    return Event(job_id, row.seq, type_, payload, now, _child_ended(row), follow_up_of)


def _child_ended(row: Any) -> ChildEnded | None:
    if row.group_id is None:
        return None
    follow_up = None
    if row.follow_up_id is not None:
        follow_up = FollowUpQueued(
            row.follow_up_id, row.follow_up_queue, row.follow_up_target, row.follow_up_timeout
        )
    return ChildEnded(
        row.group_id, row.parent_id, row.ended, row.total, row.failed, row.on_failure, follow_up
    )


def run_pipeline(pipe: redis.client.Pipeline, what: str) -> None:
    """Send mirror writes; the database holds the truth, so a failure is logged, not raised
    (stream readers fill a gap from the database)."""
    try:
        pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        log.warning("not mirrored to redis", extra={"what": what, "error": str(exc)})
