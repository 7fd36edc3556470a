"""What live processes hold, against a real Redis: counting holders, releasing, a clean exit,
reports that lapsed, and the cost of the last hold kept after it ends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from citeline.jobs.presence import Presence, holders, last_cost, presence_key
from citeline.jobs.queue import connect

pytestmark = pytest.mark.each_redis


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


def test_holders_are_counted_until_they_release_or_clear(connection: redis.Redis) -> None:
    name, other = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    first, second = Presence(connection, ttl=30), Presence(connection, ttl=30)
    assert holders(connection, name) == 0 and last_cost(connection, name) is None
    first.hold(name, cost_seconds=1.25)
    second.hold(name)
    second.hold(other)
    assert holders(connection, name) == 2 and holders(connection, other) == 1
    first.release(name)
    assert holders(connection, name) == 1
    second.clear()  # what a clean exit runs
    assert holders(connection, name) == 0 and holders(connection, other) == 0
    assert last_cost(connection, name) == 1.25  # how long getting it took outlives the hold


def test_a_report_past_its_expiry_is_not_counted(connection: redis.Redis) -> None:
    name = f"test:{uuid.uuid4().hex}"
    now_ms = time.time() * 1000
    reports = {"dead-host:1:0": now_ms - 1, "live-host:2:0": now_ms + 30_000}
    connection.zadd(presence_key(name), reports)
    assert holders(connection, name) == 1
    held = Presence(connection, ttl=30)
    held.hold(name)  # a refresh also drops the lapsed report
    assert connection.zcard(presence_key(name)) == 2 and holders(connection, name) == 2
    held.clear()
    connection.delete(presence_key(name))
