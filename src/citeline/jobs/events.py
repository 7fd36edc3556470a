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
    String,
    Table,
    Uuid,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import Statements
from citeline.jobs.models import Job, JobEvent, JobState
from citeline.jobs.queue import events_key

log = logging.getLogger(__name__)

JOBS: Table = Job.__table__  # type: ignore[assignment]
EVENTS: Table = JobEvent.__table__  # type: ignore[assignment]
TERMINAL_EVENT_TYPES = frozenset({"finished", "failed", "stopped"})


@dataclass(frozen=True)
class Event:
    job_id: uuid.UUID
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime

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
        statement = _append_statement(
            tuple(sorted(change_values)), if_states is not None, if_attempt is not None
        )
        # Parameter names differ from the columns': an UPDATE takes a bind parameter named
        # like a column as a value to SET.
        params: dict[str, Any] = {
            "p_job_id": job_id,
            "p_type": type_,
            "p_data": payload,
            "p_now": now,
            **{f"p_set_{key}": value for key, value in change_values.items()},
        }
        if if_states is not None:
            params["p_states"] = [state.value for state in if_states]
        if if_attempt is not None:
            params["p_attempt"] = if_attempt
        rows = self.statements.run(statement, params)
        if not rows:
            return None
        event = Event(job_id, rows[0].seq, type_, payload, now)
        self.publish(event, pipe)
        return event

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
    change_keys: tuple[str, ...], guard_states: bool, guard_attempt: bool
) -> Executable:
    """The guarded update and the event insert as one statement (one round trip), built once
    per shape and bound with values at each call. It is written on the tables, not the mapped
    classes: the ORM's bulk machinery costs more than the SQL."""
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
    bump = statement.values(values).returning(JOBS.c.event_seq).cte("bump")
    return (
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


def run_pipeline(pipe: redis.client.Pipeline, what: str) -> None:
    """Send mirror writes; the database holds the truth, so a failure is logged, not raised
    (stream readers fill a gap from the database)."""
    try:
        pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        log.warning("not mirrored to redis", extra={"what": what, "error": str(exc)})
