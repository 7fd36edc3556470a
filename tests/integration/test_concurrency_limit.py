"""The cluster-wide concurrency limit against a real Redis: waiting, releasing, expired leases,
and contention from many threads."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack

import pytest
import redis

from citeline.errors import ProviderError
from citeline.jobs.queue import connect
from citeline.llm.messages import ChatEvent, TextDelta
from citeline.llm.resilience import (
    CircuitBreaker,
    ConcurrencyLimit,
    RetryPolicy,
    guarded_stream,
)

pytestmark = pytest.mark.each_redis

LimitFactory = Callable[..., ConcurrencyLimit]


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_limit(connection: redis.Redis) -> Iterator[LimitFactory]:
    """Limits on an endpoint of their own, whose key is deleted afterwards."""
    endpoint = f"test:{uuid.uuid4().hex}"

    def make(
        limit: int = 2, lease_seconds: float = 30.0, wait_seconds: float = 5.0
    ) -> ConcurrencyLimit:
        return ConcurrencyLimit(
            connection, endpoint, limit, lease_seconds=lease_seconds, wait_seconds=wait_seconds
        )

    yield make
    connection.delete(f"citeline:llm:slots:{endpoint}")


def test_a_third_caller_waits_then_gives_up_with_a_retryable_error(
    make_limit: LimitFactory,
) -> None:
    limit = make_limit(limit=2, wait_seconds=0.3)
    with limit.slot(), limit.slot():
        started = time.monotonic()
        with pytest.raises(ProviderError) as refused, limit.slot():
            pass
        assert time.monotonic() - started >= 0.3
    assert refused.value.retryable
    assert "2 requests already running; no slot within 0.3 s" in str(refused.value)
    with limit.slot(), limit.slot():
        pass  # both slots came back


def test_releasing_a_slot_lets_a_waiter_in(make_limit: LimitFactory) -> None:
    limit = make_limit(limit=2, wait_seconds=10)
    acquired = threading.Event()
    release_waiter = threading.Event()

    def waiter() -> None:
        with limit.slot():
            acquired.set()
            release_waiter.wait(timeout=10)

    thread = threading.Thread(target=waiter)
    with ExitStack() as held:
        held.enter_context(limit.slot())
        held.enter_context(limit.slot())
        thread.start()
        assert not acquired.wait(timeout=0.3)
    assert acquired.wait(timeout=5)
    release_waiter.set()
    thread.join(timeout=5)


def test_an_expired_lease_frees_the_slot_of_a_holder_that_never_released(
    make_limit: LimitFactory,
) -> None:
    crashed = make_limit(limit=1, lease_seconds=0.3)
    assert crashed.take("a holder that died without releasing")
    started = time.monotonic()
    with make_limit(limit=1, wait_seconds=5).slot():
        assert time.monotonic() - started >= 0.2


def test_renewing_keeps_a_slot_past_its_first_lease(make_limit: LimitFactory) -> None:
    limit = make_limit(limit=1, lease_seconds=0.4, wait_seconds=0)
    with limit.slot() as lease:
        time.sleep(0.25)
        assert lease.renew()
        time.sleep(0.25)  # past the first lease, within the renewed one
        with pytest.raises(ProviderError), limit.slot():
            pass


def test_contending_threads_never_exceed_the_limit(make_limit: LimitFactory) -> None:
    limit = make_limit(limit=2, wait_seconds=30)
    lock = threading.Lock()
    running = peak = done = 0

    def work() -> None:
        nonlocal running, peak, done
        for _ in range(3):
            with limit.slot():
                with lock:
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.02)
                with lock:
                    running -= 1
                    done += 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert done == 18
    assert peak == 2


def test_guarded_stream_releases_its_slot_when_the_consumer_stops_early(
    make_limit: LimitFactory, connection: redis.Redis
) -> None:
    limit = make_limit(limit=1)

    def open_stream() -> Iterator[ChatEvent]:
        while True:
            yield TextDelta(text="token")

    breaker = CircuitBreaker("test", failure_threshold=1, cool_down_seconds=30)
    events = guarded_stream(
        "test",
        open_stream,
        breaker=breaker,
        retry=RetryPolicy(attempts=1, base_seconds=0, rng=random.Random(0)),
        limit=limit,
    )
    assert next(events) == TextDelta(text="token")
    assert connection.zcard(limit.key) == 1
    assert isinstance(events, Generator)
    events.close()
    assert connection.zcard(limit.key) == 0
    assert breaker.failures == 0
