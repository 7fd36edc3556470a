"""Each job's ordered events: kept in the database, mirrored to a Redis Stream for live readers.

The sequence number comes from the job row (`event_seq`), so it is gap-free and ordered even when
several processes emit for one job. The stream entry for event `n` has the id `0-n`; a writer that
loses the race to the stream leaves a gap there, which readers fill from the database.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import DateTime, String, Uuid, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.jobs.models import Job, JobEvent, JobState
from citeline.jobs.queue import events_key

log = logging.getLogger(__name__)

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
        self, sessions: sessionmaker[Session], redis_client: redis.Redis, stream_ttl: int
    ) -> None:
        self.sessions = sessions
        self.redis = redis_client
        self.stream_ttl = stream_ttl

    def append(
        self,
        job_id: uuid.UUID,
        type_: str,
        data: Mapping[str, Any] | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        if_states: Sequence[JobState] | None = None,
        if_attempt: int | None = None,
    ) -> Event | None:
        """Record one event, applying `changes` to the job in the same transaction.

        With `if_states` or `if_attempt`, nothing happens (None is returned) unless the job is
        still in one of those states and attempt: that is how racing writers (a worker finishing,
        a user cancelling, the reaper) agree on a single outcome.
        """
        payload = dict(data or {})
        with unit_of_work(self.sessions) as session:
            event = self.append_in(session, job_id, type_, payload, changes, if_states, if_attempt)
        if event is not None:
            self.publish(event)
        return event

    def append_in(
        self,
        session: Session,
        job_id: uuid.UUID,
        type_: str,
        payload: dict[str, Any],
        changes: Mapping[str, Any] | None,
        if_states: Sequence[JobState] | None,
        if_attempt: int | None,
    ) -> Event | None:
        """`append` inside the caller's transaction; the caller publishes after committing."""
        now = utcnow()
        statement = update(Job).where(Job.id == job_id)
        if if_states is not None:
            statement = statement.where(Job.state.in_([state.value for state in if_states]))
        if if_attempt is not None:
            statement = statement.where(Job.attempt == if_attempt)
        values = {"event_seq": Job.event_seq + 1, "updated_at": now, **(changes or {})}
        bump = statement.values(values).returning(Job.event_seq).cte("bump")
        # One round trip: the guarded update and the event insert in a single statement.
        record = (
            insert(JobEvent)
            .from_select(
                ["job_id", "seq", "type", "data", "created_at"],
                select(
                    literal(job_id, Uuid()),
                    bump.c.event_seq,
                    literal(type_, String()),
                    literal(payload, JSONB()),
                    literal(now, DateTime(timezone=True)),
                ),
            )
            .returning(JobEvent.seq)
        )
        seq = session.execute(record).scalar()
        if seq is None:
            return None
        return Event(job_id, seq, type_, payload, now)

    def publish(self, event: Event) -> None:
        key = events_key(event.job_id)
        fields = {"type": event.type, "event": json.dumps(event.as_json())}
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(key, fields, id=f"0-{event.seq}")  # type: ignore[arg-type]
            pipe.expire(key, self.stream_ttl)
            pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            # The database holds the event; stream readers fill the gap from there.
            log.warning(
                "event not mirrored to redis",
                extra={"job_id": str(event.job_id), "error": str(exc)},
            )

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
