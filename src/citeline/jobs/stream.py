"""Server-Sent Events for one job: catch up from the database, then follow the Redis Stream.

A client reconnecting with `Last-Event-ID: n` receives events n+1, n+2, ... exactly once and in
order; the stream ends after a terminal event; comment lines keep an idle connection alive.
All clients of one job in one API process share a single Redis reader (`StreamHub`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from citeline.jobs.events import TERMINAL_EVENT_TYPES, Event, EventLog
from citeline.jobs.queue import events_key

log = logging.getLogger(__name__)

CATCH_UP_BATCH = 500
DRAIN_RETRY_MS = 250  # how soon a drained client reconnects

# (seq, type, the event's JSON as stored), or None for "nothing arrived for a while".
Item = tuple[int, str, str] | None


@dataclass
class _Reader:
    queues: set[asyncio.Queue[Item]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    closed: bool = False


class StreamHub:
    """One `XREAD` loop per job that has listeners in this process, fanning entries out."""

    def __init__(self, connection: aioredis.Redis, idle_seconds: float) -> None:
        self.connection = connection
        self.idle_seconds = idle_seconds
        self._readers: dict[uuid.UUID, _Reader] = {}
        self.draining = False

    def drain(self) -> None:
        """The process is stopping: every stream ends now, telling its client to reconnect
        (to another replica, with `Last-Event-ID`) instead of being cut mid-event later."""
        self.draining = True
        for reader in self._readers.values():
            for queue in reader.queues:
                queue.put_nowait(None)

    @asynccontextmanager
    async def subscribe(self, job_id: uuid.UUID, after: int) -> AsyncIterator[asyncio.Queue[Item]]:
        queue: asyncio.Queue[Item] = asyncio.Queue()
        reader = self._readers.get(job_id)
        if reader is None:
            reader = self._readers[job_id] = _Reader()
            reader.task = asyncio.create_task(self._read(job_id, reader, after))
        reader.queues.add(queue)
        try:
            yield queue
        finally:
            reader.queues.discard(queue)
            if not reader.queues and self._readers.get(job_id) is reader:
                del self._readers[job_id]
                reader.closed = True
                if reader.task is not None:
                    reader.task.cancel()

    async def _read(self, job_id: uuid.UUID, reader: _Reader, after: int) -> None:
        key = events_key(job_id)
        position = f"0-{after}"
        block_ms = int(self.idle_seconds * 1000)
        # redis-py may turn a cancellation during XREAD into a connection error: the flag, not
        # only the cancel, ends this loop.
        while not reader.closed:
            try:
                response = await self.connection.xread({key: position}, block=block_ms, count=500)
            except redis.RedisError as exc:
                if reader.closed:
                    return
                log.warning(
                    "event stream read failed", extra={"job": str(job_id), "error": str(exc)}
                )
                await asyncio.sleep(min(2.0, self.idle_seconds))
                response = None
            if not response:
                for queue in list(reader.queues):
                    queue.put_nowait(None)
                continue
            entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(Any, response)[0][1]
            for entry_id, fields in entries:
                item = (
                    int(entry_id.rsplit(b"-", 1)[1]),
                    fields[b"type"].decode(),
                    fields[b"event"].decode(),
                )
                for queue in list(reader.queues):
                    queue.put_nowait(item)
            position = entries[-1][0].decode()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_frame(data: str, *, event: str | None = None, event_id: int | None = None) -> str:
    """One Server-Sent Event. `data` is one line (JSON never holds a raw newline)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    head += f"event: {event}\n" if event is not None else ""
    return f"{head}data: {data}\n\n"


def stream_response(
    chunks: AsyncIterator[str], headers: dict[str, str] | None = None
) -> StreamingResponse:
    """A response of Server-Sent Events that no proxy buffers or caches."""
    return StreamingResponse(
        chunks, media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )


def sse_response(
    job_id: uuid.UUID,
    after: int,
    *,
    events: EventLog,
    hub: StreamHub,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """A job's events after `after` as a Server-Sent Events response."""
    return stream_response(job_events(job_id, after, events=events, hub=hub), headers)


def _item(event: Event) -> tuple[int, str, str]:
    return event.seq, event.type, json.dumps(event.as_json())


def sse(item: tuple[int, str, str]) -> str:
    seq, type_, raw = item
    return sse_frame(raw, event=type_, event_id=seq)


def format_event(event: Event) -> str:
    return sse(_item(event))


async def follow(
    job_id: uuid.UUID, after: int, *, events: EventLog, hub: StreamHub
) -> AsyncGenerator[Item, None]:
    """The job's events after `after`, each once and in order, as (seq, type, JSON); None
    when nothing arrived for a while. Ends after a terminal event."""
    last = after
    # Listen first, then read the record: whatever is published meanwhile is queued.
    async with hub.subscribe(job_id, after) as queue:
        while True:
            batch = await run_in_threadpool(events.read, job_id, after=last, limit=CATCH_UP_BATCH)
            for event in batch:
                yield _item(event)
                last = event.seq
                if event.terminal:
                    return
            if len(batch) < CATCH_UP_BATCH:
                break
        while True:
            if hub.draining:
                yield None
            item = await queue.get()
            if item is not None and item[0] <= last:
                continue
            if item is None:
                # Quiet (or Redis unreachable): the database is the record, so look there too.
                missed = await run_in_threadpool(events.read, job_id, after=last)
                if not missed and not hub.draining:
                    yield None
            elif item[0] > last + 1:
                missed = await run_in_threadpool(events.read, job_id, after=last, until=item[0])
            else:
                missed = []
            for event in missed:
                yield _item(event)
                last = event.seq
                if event.terminal:
                    return
            if item is None:
                continue
            # The stored JSON goes out as it is: no parse and re-encode per client.
            yield item
            last = item[0]
            if item[1] in TERMINAL_EVENT_TYPES:
                return


async def job_events(
    job_id: uuid.UUID, after: int, *, events: EventLog, hub: StreamHub
) -> AsyncIterator[str]:
    """The job's events as Server-Sent Events text; when the process drains, a short retry
    hint and the end of the stream."""
    yield "retry: 2000\n\n"
    async for item in follow(job_id, after, events=events, hub=hub):
        if item is not None:
            yield sse(item)
        elif hub.draining:
            yield f"retry: {DRAIN_RETRY_MS}\n: this server is stopping; reconnect\n\n"
            return
        else:
            yield ": heartbeat\n\n"


async def terminal_event(
    job_id: uuid.UUID, *, events: EventLog, hub: StreamHub
) -> tuple[str, dict[str, Any]]:
    """Wait for the job to end: its terminal event's type and data."""
    stream = follow(job_id, 0, events=events, hub=hub)
    try:
        async for item in stream:
            if item is not None and item[1] in TERMINAL_EVENT_TYPES:
                data: dict[str, Any] = json.loads(item[2]).get("data") or {}
                return item[1], data
    finally:
        await stream.aclose()
    raise AssertionError(f"the events of job {job_id} ended without a terminal event")
