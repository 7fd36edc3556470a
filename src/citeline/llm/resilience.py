"""Resilience for model calls: a circuit breaker per endpoint, retries with jittered backoff,
and a cluster-wide concurrency limit held in Redis, combined by `guarded_stream`."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum

import redis

from citeline.errors import ProviderError
from citeline.llm.messages import ChatEvent

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """Stops calling an endpoint after `failure_threshold` consecutive failures; after
    `cool_down_seconds` lets one trial call through, whose outcome closes or re-opens it."""

    def __init__(
        self,
        endpoint: str,
        *,
        failure_threshold: int,
        cool_down_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.failure_threshold = failure_threshold
        self.cool_down_seconds = cool_down_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.closed
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._advance()
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        return self._failures

    def before_call(self) -> None:
        """Raise a retryable ProviderError unless a call may go to the endpoint now."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.closed:
                return
            if self._state is BreakerState.half_open and not self._trial_running:
                self._trial_running = True
                return
            if self._state is BreakerState.open:
                wait = self._opened_at + self.cool_down_seconds - self._clock()
                detail = f"circuit open after {self._failures} failures; retry in {wait:.1f} s"
            else:
                detail = "circuit half-open; a trial call is running"
        raise ProviderError(detail, provider=self.endpoint, retryable=True)

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.closed
            self._failures = 0
            self._trial_running = False

    def record_failure(self) -> None:
        """Count a failure that is the endpoint's fault."""
        with self._lock:
            self._failures += 1
            self._trial_running = False
            # While open, failures of calls started before it opened do not extend the cool-down.
            if self._state is BreakerState.half_open or (
                self._state is BreakerState.closed and self._failures >= self.failure_threshold
            ):
                self._state = BreakerState.open
                self._opened_at = self._clock()

    def record_abandoned(self) -> None:
        """A call ended with no verdict on the endpoint (the caller's error, an early close):
        let the next caller make the half-open trial."""
        with self._lock:
            self._trial_running = False

    def _advance(self) -> None:
        if (
            self._state is BreakerState.open
            and self._clock() - self._opened_at >= self.cool_down_seconds
        ):
            self._state = BreakerState.half_open


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(endpoint: str, failure_threshold: int, cool_down_seconds: float) -> CircuitBreaker:
    """The process-wide breaker of `endpoint`; the settings of its first caller stick."""
    with _breakers_lock:
        if endpoint not in _breakers:
            _breakers[endpoint] = CircuitBreaker(
                endpoint, failure_threshold=failure_threshold, cool_down_seconds=cool_down_seconds
            )
        return _breakers[endpoint]


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets in all, and the backoff between them."""

    attempts: int
    base_seconds: float
    max_seconds: float = 10.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a call needs at least one attempt")

    def delay(self, attempt_index: int) -> float:
        """Seconds to wait after attempt `attempt_index` (0-based) failed: full jitter."""
        return self.rng.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt_index))


# Takes a slot for a token, or extends the one it holds. Scores are lease expiries in
# milliseconds of the Redis server's clock, so machines whose clocks disagree still agree on
# which leases have run out. The key itself expires with its last lease.
_TAKE = """
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return 1
"""


class ConcurrencyLimit:
    """At most `limit` calls to `endpoint` at once across every process sharing the Redis.

    A slot is a lease, so a holder that dies without releasing frees it after `lease_seconds`.
    Holders renew while they run (`guarded_stream` calls `Lease.keep_alive` on each event),
    so `lease_seconds` need only exceed the longest silence of a call, such as the wait for the
    first token: make it at least the provider timeout.
    """

    def __init__(
        self,
        connection: redis.Redis,
        endpoint: str,
        limit: int,
        *,
        lease_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.endpoint = endpoint
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.key = f"citeline:llm:slots:{endpoint}"
        self._connection = connection
        self._take = connection.register_script(_TAKE)

    @contextmanager
    def slot(self) -> Iterator[Lease]:
        """Hold a slot for the block, waiting up to `wait_seconds` for one."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.05
        while not self.take(token):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderError(
                    f"{self.limit} requests already running; "
                    f"no slot within {self.wait_seconds:g} s",
                    provider=self.endpoint,
                    retryable=True,
                )
            time.sleep(min(pause, remaining))
            pause = min(pause * 1.5, 0.25)
        try:
            yield Lease(self, token, renewed_at=time.monotonic())
        finally:
            self._connection.zrem(self.key, token)

    def take(self, token: str) -> bool:
        """Take a slot for `token` until `lease_seconds` from now, or extend the one it holds
        (re-taking it if the lease ran out); False if every slot is taken."""
        lease_ms = max(1, round(self.lease_seconds * 1000))
        return bool(self._take(keys=[self.key], args=[self.limit, lease_ms, token]))


@dataclass
class Lease:
    """A slot of a `ConcurrencyLimit`, held by `token`."""

    limit: ConcurrencyLimit
    token: str
    renewed_at: float

    def renew(self) -> bool:
        """Extend the lease; False if it ran out and every slot is taken."""
        self.renewed_at = time.monotonic()
        return self.limit.take(self.token)

    def keep_alive(self) -> None:
        """Renew once a third of the lease has passed; cheap enough to call on every event."""
        if time.monotonic() - self.renewed_at >= self.limit.lease_seconds / 3:
            self.renew()


def guarded_stream(
    endpoint: str,
    open_stream: Callable[[], Iterator[ChatEvent]],
    *,
    breaker: CircuitBreaker,
    retry: RetryPolicy,
    limit: ConcurrencyLimit | None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[ChatEvent]:
    """Stream from `open_stream` behind the breaker and the limit, retrying retryable
    ProviderErrors until the first event; after that the consumer has seen tokens, so never.

    Only ProviderErrors count against the breaker: client errors, a full limit and an early
    close by the consumer say nothing about the endpoint's health.
    """
    for attempt in range(1, retry.attempts + 1):
        breaker.before_call()
        worked: bool | None = None  # None: the attempt says nothing about the endpoint
        try:
            slot: AbstractContextManager[Lease | None] = limit.slot() if limit else nullcontext()
            with slot as lease:
                started = False
                try:
                    with _closing(open_stream()) as stream:
                        for event in stream:
                            started = True
                            yield event
                            if lease is not None:
                                lease.keep_alive()
                except ProviderError as exc:
                    worked = False
                    if started or not exc.retryable or attempt == retry.attempts:
                        raise
                    error = exc
                else:
                    worked = True
        finally:
            if worked is None:
                breaker.record_abandoned()
            elif worked:
                breaker.record_success()
            else:
                breaker.record_failure()
        if worked:
            return
        delay = retry.delay(attempt - 1)
        log.warning(
            "retrying a failed model call",
            extra={"endpoint": endpoint, "attempt": attempt, "delay": delay, "error": str(error)},
        )
        sleep(delay)


@contextmanager
def _closing(stream: Iterator[ChatEvent]) -> Iterator[Iterator[ChatEvent]]:
    """Close a provider's stream when we leave it early, so the generation stops."""
    try:
        yield stream
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "ConcurrencyLimit",
    "Lease",
    "RetryPolicy",
    "breaker_for",
    "guarded_stream",
]
