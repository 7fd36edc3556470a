"""Server-Sent Events for one job: catch up from the database, then follow the Redis Stream.

A client reconnecting with `Last-Event-ID: n` receives events n+1, n+2, ... exactly once and in
order; the stream ends after a terminal event; comment lines keep an idle connection alive.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from citeline.jobs.events import TERMINAL_EVENT_TYPES, Event, EventLog
from citeline.jobs.queue import events_key

CATCH_UP_BATCH = 500


def format_event(event: Event) -> str:
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(event.as_json())}\n\n"


async def job_events(
    job_id: uuid.UUID,
    after: int,
    *,
    events: EventLog,
    connection: aioredis.Redis,
    heartbeat_seconds: float,
) -> AsyncIterator[str]:
    last = after
    yield "retry: 2000\n\n"
    while True:
        batch = await run_in_threadpool(events.read, job_id, after=last, limit=CATCH_UP_BATCH)
        for event in batch:
            yield format_event(event)
            last = event.seq
            if event.terminal:
                return
        if len(batch) < CATCH_UP_BATCH:
            break

    key = events_key(job_id)
    block_ms = int(heartbeat_seconds * 1000)
    while True:
        try:
            response = await connection.xread({key: f"0-{last}"}, block=block_ms, count=100)
        except redis.RedisError:
            await asyncio.sleep(min(2.0, heartbeat_seconds))
            response = None
        if not response:
            # Quiet (or Redis unreachable): the database is the record, so look there too.
            missed = await run_in_threadpool(events.read, job_id, after=last)
            if not missed:
                yield ": heartbeat\n\n"
            for event in missed:
                yield format_event(event)
                last = event.seq
                if event.terminal:
                    return
            continue
        entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(Any, response)[0][1]
        for entry_id, fields in entries:
            seq = int(entry_id.rsplit(b"-", 1)[1])
            if seq <= last:
                continue
            if seq > last + 1:
                gap = await run_in_threadpool(events.read, job_id, after=last, until=seq)
                for missing in gap:
                    yield format_event(missing)
                    last = missing.seq
                    if missing.terminal:
                        return
            type_ = fields[b"type"].decode()
            # The stored JSON goes out as it is: no parse and re-encode per client.
            yield f"id: {seq}\nevent: {type_}\ndata: {fields[b'event'].decode()}\n\n"
            last = seq
            if type_ in TERMINAL_EVENT_TYPES:
                return
