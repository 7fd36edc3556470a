"""A per-minute limit on calls (tool calls), counted in Redis so that every process shares one
count, that answers most calls without a Redis round trip on the call's path.

While a key's shared count, read from Redis less than `FRESH_SECONDS` ago, plus the calls
admitted here since (those not yet sent and those on their way) is below half the limit, a
call is admitted at once and counted in Redis afterwards by a thread that sends what gathered
over `FLUSH_SECONDS`. From half the limit on (and for a key's first call, and when the count is
stale) each call is counted in Redis before it runs, as a plain `limits` counter does. What
this gives up is bounded: processes that start a burst on the same key at the same moment may
each admit up to half the limit before they see each other's calls, at most `FLUSH_SECONDS`
plus a round trip later. One `CallLimit` per process and limit (`CallLimit.shared`), so the
bound is per process, not per caller object.

While Redis is down calls go uncounted rather than refused, as requests do (`auth.ratelimit`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)

FRESH_SECONDS = 1.0
FLUSH_SECONDS = 0.05
MAX_KEYS = 4096  # keys remembered, the least recently used forgotten first
MAX_KEY_PART = 200  # characters of a key part (a tool name a client sent) that count

_shared: dict[tuple[int, int], CallLimit] = {}
_shared_lock = threading.Lock()


@dataclass
class _Count:
    known: int  # calls in the shared window when last read from Redis, this process's included
    read: float  # when (monotonic)
    pending: int = 0  # admitted here and not yet sent to Redis
    sending: int = 0  # admitted here and being sent


class CallLimit:
    """At most `per_minute` calls per key (a sliding window), counted under
    `citeline:limits` in Redis. `per_minute` 0 or less: no limit."""

    @classmethod
    def shared(cls, connection: redis.Redis, per_minute: int) -> CallLimit:
        """This process's one limit of `per_minute` on `connection`'s Redis."""
        key = (id(connection.connection_pool), per_minute)
        with _shared_lock:
            limit = _shared.get(key)
            if limit is None:
                limit = _shared[key] = cls(connection, per_minute)
            return limit

    def __init__(
        self,
        connection: redis.Redis,
        per_minute: int,
        *,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=connection.connection_pool, key_prefix="citeline:limits"
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.flush_seconds = flush_seconds
        self._counts: OrderedDict[tuple[str, ...], _Count] = OrderedDict()
        self._condition = threading.Condition()
        self._flushing = False
        self._now = threading.Event()  # flush() wants the batch sent without waiting

    @property
    def per_minute(self) -> int:
        return self.item.amount if self.item is not None else 0

    def hit(self, *key: str) -> int | None:
        """Count one call under `key`: None when it may run, else the seconds until it may."""
        key = _bounded(key)
        if self.item is None or self.admit_at_once(*key):
            return None
        with self._condition:
            count = self._count(key)
            pending, count.pending = count.pending, 0
            count.sending += pending + 1
        try:
            return self._hit_now(key, pending)
        finally:
            with self._condition:
                count.sending -= pending + 1
                self._condition.notify_all()

    def admit_at_once(self, *key: str) -> bool:
        """Admit (and count) one call under `key` if that needs no Redis round trip now; False
        when `hit` must ask Redis (an async caller can then run `hit` on a thread)."""
        if self.item is None:
            return True
        key = _bounded(key)
        with self._condition:
            count = self._counts.get(key)
            if count is None or time.monotonic() - count.read >= FRESH_SECONDS:
                return False
            here = count.pending + count.sending
            if 2 * (count.known + here + 1) > self.item.amount:
                return False
            count.pending += 1
            self._counts.move_to_end(key)
            if not self._flushing:
                self._flushing = True
                threading.Thread(target=self._flush_loop, name="call-limit", daemon=True).start()
            return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Count in Redis every call admitted so far; False when that took over `timeout`."""
        with self._condition:
            self._now.set()
            self._condition.notify_all()
            return self._condition.wait_for(
                lambda: not any(c.pending or c.sending for c in self._counts.values()), timeout
            )

    def _hit_now(self, key: tuple[str, ...], pending: int) -> int | None:
        assert self.item is not None
        try:
            self._record(key, pending)
            allowed = self._limiter.hit(self.item, *key)
            stats = self._limiter.get_window_stats(self.item, *key)
        except redis.RedisError as exc:
            log.warning("call limit not counted: redis unavailable", extra={"error": str(exc)})
            return None
        self._remember(key, self.item.amount - stats.remaining)
        if allowed:
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _record(self, key: tuple[str, ...], calls: int) -> None:
        """Count calls already admitted: in one hit while they fit the window, else one by one
        until it is full (a hit of several is all or nothing)."""
        assert self.item is not None
        if calls and not self._limiter.hit(self.item, *key, cost=calls):
            while calls and self._limiter.hit(self.item, *key):
                calls -= 1

    def _count(self, key: tuple[str, ...]) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count(0, -math.inf)
            while len(self._counts) > MAX_KEYS:
                oldest = next(iter(self._counts))
                if self._counts[oldest].pending or self._counts[oldest].sending:
                    break
                del self._counts[oldest]
        self._counts.move_to_end(key)
        return count

    def _remember(self, key: tuple[str, ...], known: int) -> None:
        with self._condition:
            count = self._count(key)
            count.known, count.read = known, time.monotonic()

    def _flush_loop(self) -> None:
        try:
            idle_since = time.monotonic()
            while True:
                self._now.wait(self.flush_seconds)
                self._now.clear()
                with self._condition:
                    batch = {key: c.pending for key, c in self._counts.items() if c.pending}
                    if not batch:
                        if time.monotonic() - idle_since >= self.flush_seconds:
                            self._flushing = False
                            return
                        continue
                    for key, calls in batch.items():
                        self._counts[key].pending = 0
                        self._counts[key].sending += calls
                for key, calls in batch.items():
                    try:
                        self._send(key, calls)
                    finally:
                        with self._condition:
                            self._counts[key].sending -= calls
                            self._condition.notify_all()
                idle_since = time.monotonic()
        finally:
            with self._condition:
                if self._flushing:  # left by an error: the next admitted call starts another
                    self._flushing = False
                    log.error("call limit flusher stopped")
                self._condition.notify_all()

    def _send(self, key: tuple[str, ...], calls: int) -> None:
        assert self.item is not None
        try:
            self._record(key, calls)
            stats = self._limiter.get_window_stats(self.item, *key)
        except redis.RedisError as exc:
            log.warning(
                "call limit not counted: redis unavailable",
                extra={"error": str(exc), "calls": calls},
            )
            return
        self._remember(key, self.item.amount - stats.remaining)


def _bounded(key: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part[:MAX_KEY_PART] for part in key)
