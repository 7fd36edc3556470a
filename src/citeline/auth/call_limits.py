"""A per-minute limit on calls (tool calls), counted in Redis so that every process shares one
count, that answers most calls without a Redis round trip on the call's path.

While a key's shared count, read from Redis less than `FRESH_SECONDS` ago, plus the calls
admitted here since is below half the limit, a call is admitted at once and counted in Redis
afterwards by a thread that sends what gathered over `FLUSH_SECONDS` as one hit. From half the
limit on (and for a key's first call, and when the count is stale) each call is counted in
Redis before it runs, exactly as a plain `limits` counter does. So the limit is exact where it
refuses; what this gives up is bounded: when several processes start a burst on the same key at
the same moment, each may admit up to half the limit before it sees the others' calls, at most
`FLUSH_SECONDS` later.

While Redis is down calls go uncounted rather than refused, as requests do (`auth.ratelimit`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)

FRESH_SECONDS = 1.0
FLUSH_SECONDS = 0.05
MAX_KEYS = 4096  # keys remembered; beyond it those not read for a minute are forgotten


@dataclass
class _Count:
    known: int  # calls in the shared window when last read from Redis, this process's included
    read: float  # when (monotonic)
    pending: int = 0  # admitted here and not yet counted in Redis


class CallLimit:
    """At most `per_minute` calls per key (a sliding window), counted under
    `citeline:limits` in Redis. `per_minute` 0 or less: no limit."""

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
        self._counts: dict[tuple[str, ...], _Count] = {}
        self._condition = threading.Condition()
        self._flushing = False
        self._in_flight = 0  # hits taken from `pending` and not yet sent

    @property
    def per_minute(self) -> int:
        return self.item.amount if self.item is not None else 0

    def hit(self, *key: str) -> int | None:
        """Count one call under `key`: None when it may run, else the seconds until it may."""
        if self.item is None or self.admit_at_once(*key):
            return None
        with self._condition:
            count = self._counts.get(key)
            pending = count.pending if count is not None else 0
            if count is not None:
                count.pending = 0
            self._in_flight += pending
        try:
            return self._hit_now(key, pending)
        finally:
            with self._condition:
                self._in_flight -= pending
                self._condition.notify_all()

    def admit_at_once(self, *key: str) -> bool:
        """Admit (and count) one call under `key` if that needs no Redis round trip now; False
        when `hit` must ask Redis (an async caller can then run `hit` on a thread)."""
        if self.item is None:
            return True
        with self._condition:
            count = self._counts.get(key)
            if (
                count is None
                or time.monotonic() - count.read >= FRESH_SECONDS
                or 2 * (count.known + count.pending + 1) > self.item.amount
            ):
                return False
            count.pending += 1
            self._start_flushing()
            return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Count in Redis every call admitted so far; False when that took over `timeout`."""
        with self._condition:
            self._condition.notify_all()
            return self._condition.wait_for(
                lambda: (
                    self._in_flight == 0
                    and not any(count.pending for count in self._counts.values())
                ),
                timeout,
            )

    def _hit_now(self, key: tuple[str, ...], pending: int) -> int | None:
        assert self.item is not None
        try:
            if pending:
                # Already admitted: this fails (uncounted) only when the window is full anyway.
                self._limiter.hit(self.item, *key, cost=pending)
            allowed = self._limiter.hit(self.item, *key)
            stats = self._limiter.get_window_stats(self.item, *key)
        except redis.RedisError as exc:
            log.warning("call limit not counted: redis unavailable", extra={"error": str(exc)})
            return None
        self._remember(key, self.item.amount - stats.remaining)
        if allowed:
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _remember(self, key: tuple[str, ...], known: int) -> None:
        now = time.monotonic()
        with self._condition:
            count = self._counts.get(key)
            if count is None:
                if len(self._counts) >= MAX_KEYS:
                    self._forget_old(now)
                self._counts[key] = _Count(known, now)
            else:
                count.known, count.read = known, now

    def _forget_old(self, now: float) -> None:
        for key, count in list(self._counts.items()):
            if not count.pending and now - count.read > 60:
                del self._counts[key]

    def _start_flushing(self) -> None:
        if not self._flushing:
            self._flushing = True
            threading.Thread(target=self._flush_loop, name="call-limit", daemon=True).start()

    def _flush_loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait(self.flush_seconds)
                batch = {key: c.pending for key, c in self._counts.items() if c.pending}
                if not batch:
                    self._flushing = False
                    self._condition.notify_all()
                    return
                for key in batch:
                    self._counts[key].pending = 0
                self._in_flight += sum(batch.values())
            try:
                for key, pending in batch.items():
                    self._send(key, pending)
            finally:
                with self._condition:
                    self._in_flight -= sum(batch.values())
                    self._condition.notify_all()

    def _send(self, key: tuple[str, ...], pending: int) -> None:
        assert self.item is not None
        try:
            self._limiter.hit(self.item, *key, cost=pending)
            stats = self._limiter.get_window_stats(self.item, *key)
        except redis.RedisError as exc:
            log.warning(
                "call limit not counted: redis unavailable",
                extra={"error": str(exc), "calls": pending},
            )
            return
        self._remember(key, self.item.amount - stats.remaining)
