"""`CallLimit` against real Redis: exact where it refuses, every admitted call counted in the
shared window (also those admitted without a round trip), shared between processes, and
uncounted rather than refused while Redis is down."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from citeline.auth import CallLimit

pytestmark = pytest.mark.each_redis


@pytest.fixture
def connection(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def shared_count(connection: redis.Redis, per_minute: int, *key: str) -> int:
    """What Redis holds for `key`, read with `limits` itself (another process's view)."""
    storage = RedisStorage(
        "redis://", connection_pool=connection.connection_pool, key_prefix="citeline:limits"
    )
    item = RateLimitItemPerMinute(per_minute)
    return (
        per_minute - SlidingWindowCounterRateLimiter(storage).get_window_stats(item, *key).remaining
    )


def test_admits_up_to_the_limit_then_refuses_with_a_wait(connection: redis.Redis) -> None:
    limit = CallLimit(connection, 10)
    key = ("test", uuid.uuid4().hex, "tool")
    answers = [limit.hit(*key) for _ in range(12)]
    assert answers[:10] == [None] * 10
    assert all(isinstance(wait, int) and 1 <= wait <= 60 for wait in answers[10:])
    assert limit.flush()
    assert shared_count(connection, 10, *key) == 10


def test_calls_admitted_locally_are_counted_in_redis(connection: redis.Redis) -> None:
    limit = CallLimit(connection, 1000)
    key = ("test", uuid.uuid4().hex, "tool")
    for _ in range(50):
        assert limit.hit(*key) is None
    assert limit.flush()
    assert shared_count(connection, 1000, *key) == 50


def test_two_processes_share_one_count(connection: redis.Redis) -> None:
    first, second = CallLimit(connection, 20), CallLimit(connection, 20)
    key = ("test", uuid.uuid4().hex, "tool")
    admitted = 0
    for _ in range(15):
        for limit in (first, second):
            admitted += limit.hit(*key) is None
    # Each one admits at most half the limit without asking Redis, and then asks before each
    # call, so together they can never pass the limit by more than what is in flight.
    assert first.flush() and second.flush()
    assert admitted == 20
    assert shared_count(connection, 20, *key) == 20


def test_a_limit_of_zero_admits_everything_and_counts_nothing(connection: redis.Redis) -> None:
    limit = CallLimit(connection, 0)
    key = ("test", uuid.uuid4().hex, "tool")
    assert all(limit.hit(*key) is None for _ in range(5))
    assert limit.per_minute == 0
    assert connection.keys(f"citeline:limits*{key[1]}*") == []


def test_redis_down_admits_uncounted(caplog: pytest.LogCaptureFixture) -> None:
    with socket_nobody_listens_on() as port:
        limit = CallLimit(redis.Redis(port=port, socket_connect_timeout=0.2), 1)
        assert limit.hit("test", "someone", "tool") is None
        assert limit.hit("test", "someone", "tool") is None
    assert "call limit not counted" in caplog.text


class socket_nobody_listens_on:
    """A loopback port that was free a moment ago and refuses connections."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_concurrent_calls_in_one_process_never_pass_the_limit(connection: redis.Redis) -> None:
    limit = CallLimit(connection, 100)
    key = ("test", uuid.uuid4().hex, "tool")
    admitted: list[bool] = []

    def caller() -> None:
        for _ in range(40):
            admitted.append(limit.hit(*key) is None)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limit.flush()
    assert sum(admitted) == 100
    assert shared_count(connection, 100, *key) == 100


def test_one_limit_per_process_and_redis(connection: redis.Redis) -> None:
    assert CallLimit.shared(connection, 7) is CallLimit.shared(connection, 7)
    assert CallLimit.shared(connection, 7) is not CallLimit.shared(connection, 8)
