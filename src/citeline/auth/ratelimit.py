"""Request rate limits per user, per API key and for the whole deployment, counted in Redis by
`limits` so every API process shares one count (sign-in throttling is `auth.throttle`).

Sliding-window counters: two integers per key and window, however high the limit."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from citeline.auth.access import Access
from citeline.errors import RateLimited
from citeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quota:
    """What the RateLimit headers report for the tightest limit a request counted against."""

    limit: int
    remaining: int
    reset: int  # seconds

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class RateLimits:
    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=connection.connection_pool, key_prefix="citeline:limits"
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._user = _per_minute(settings.rate_limit_user_per_minute)
        self._api_key = _per_minute(settings.rate_limit_api_key_per_minute)
        self._global = _per_minute(settings.rate_limit_global_per_minute)

    def hit(self, access: Access) -> Quota | None:
        """Count one request by `access`; refuse it when a limit is used up. While Redis is
        down requests go uncounted rather than refused: reads that need only the database
        keep working (sign-in throttling, in contrast, refuses)."""
        try:
            return self._hit(access)
        except redis.RedisError as exc:
            log.warning("rate limits not counted: redis unavailable", extra={"error": str(exc)})
            return None

    def _hit(self, access: Access) -> Quota | None:
        own = self._api_key if access.api_key_id is not None else self._user
        quotas = []
        for item, key in ((own, access.subject), (self._global, "all")):
            if item is None:
                continue
            if not self._limiter.hit(item, "request", key):
                raise self._refusal(item, ("request", key), "requests")
            quotas.append(self._quota(item, ("request", key)))
        return min(quotas, key=lambda q: q.remaining) if quotas else None

    def _quota(self, item: RateLimitItem, key: tuple[str, ...]) -> Quota:
        stats = self._limiter.get_window_stats(item, *key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Quota(item.amount, stats.remaining, reset)

    def _refusal(self, item: RateLimitItem, key: tuple[str, ...], what: str) -> RateLimited:
        quota = self._quota(item, key)
        retry_after = max(1, quota.reset)
        return RateLimited(
            f"too many {what}: the limit is {item.amount} per {_window(item)}; "
            f"try again in {retry_after} s",
            retry_after=retry_after,
            limit=item.amount,
            reset=retry_after,
        )


def _per_minute(amount: int) -> RateLimitItem | None:
    return RateLimitItemPerMinute(amount) if amount > 0 else None


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
