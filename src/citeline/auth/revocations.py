"""Sign-in sessions ended before their access tokens expire.

Every access token names its session (`sid`, the refresh-token family it was issued with).
Ending a session (sign-out, a reused refresh token, a new password, a disabled account) puts
its id here, in Redis, for as long as any of its access tokens can live: checking a token costs
one `EXISTS`, no database read. Without Redis the check cannot be made, so tokens are refused
(503) rather than trusted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from citeline.auth.models import RefreshToken
from citeline.db.base import utcnow
from citeline.errors import ServiceUnavailable

PREFIX = "citeline:auth:revoked-session:"
CLOCK_SKEW_SECONDS = 60


class Revocations:
    def __init__(self, connection: redis.Redis, token_lifetime_seconds: float) -> None:
        self.redis = connection
        self.ttl = int(token_lifetime_seconds) + CLOCK_SKEW_SECONDS

    def revoke(self, session_ids: Iterable[str]) -> None:
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for session_id in ids:
                pipe.set(PREFIX + session_id, 1, ex=self.ttl)
            pipe.execute()
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"cannot end the sessions: redis unavailable: {exc}") from exc

    def revoked(self, session_id: str) -> bool:
        try:
            return bool(self.redis.exists(PREFIX + session_id))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"cannot check the session: redis unavailable: {exc}") from exc


def recent_sessions(
    session: Session,
    user_id: uuid.UUID,
    token_lifetime_seconds: float,
    *,
    keep: str | None = None,
) -> list[str]:
    """The user's sign-ins that may still hold a live access token: every token is issued
    beside a refresh token of its family, so those made within a token's lifetime say which.
    `keep` (the caller's own sign-in) is left out."""
    since = utcnow() - timedelta(seconds=token_lifetime_seconds + CLOCK_SKEW_SECONDS)
    families = session.scalars(
        select(RefreshToken.family)
        .where(RefreshToken.user_id == user_id, RefreshToken.created_at >= since)
        .distinct()
    )
    return [family.hex for family in families if family.hex != keep]
