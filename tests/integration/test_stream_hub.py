"""The shared per-job stream reader against a real Redis: fan-out, and nothing left running."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from citeline.jobs.queue import connect_async, events_key
from citeline.jobs.stream import StreamHub

pytestmark = pytest.mark.each_redis


def test_readers_fan_out_and_stop_when_the_last_listener_leaves(redis_url: str) -> None:
    async def scenario() -> None:
        connection = connect_async(redis_url, timeout=10)
        hub = StreamHub(connection, idle_seconds=0.2)
        job_id = uuid.uuid4()
        key = events_key(job_id)
        await connection.delete(key)
        async with hub.subscribe(job_id, 0) as first, hub.subscribe(job_id, 0) as second:
            await connection.xadd(key, {"type": "tick", "event": "{}"}, id="0-1")
            assert await asyncio.wait_for(_next_event(first), 5) == (1, "tick", "{}")
            assert await asyncio.wait_for(_next_event(second), 5) == (1, "tick", "{}")
            reader = hub._readers[job_id]
            assert reader.task is not None
        assert job_id not in hub._readers
        await asyncio.sleep(0.5)
        assert reader.task.done()
        await connection.delete(key)
        await connection.aclose()

    asyncio.run(scenario())


async def _next_event(queue: asyncio.Queue[tuple[int, str, str] | None]) -> tuple[int, str, str]:
    while True:
        item = await queue.get()
        if item is not None:
            return item
