"""Redis connections, queue names and the keys Citeline keeps beside RQ's own."""

from __future__ import annotations

import uuid

import redis
import redis.asyncio as aioredis
from rq import Queue

from citeline.errors import ConfigurationError

QUEUE_NAMES = ("high", "default", "low")
# A worker that sends no heartbeat for this long drops out of RQ's registry.
WORKER_TTL_SECONDS = 30


def connect(url: str, *, timeout: float | None = 5.0) -> redis.Redis:
    """A client whose calls fail after `timeout` seconds instead of hanging (None: block freely)."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=5.0, socket_timeout=timeout, health_check_interval=30
    )


def check_redis(connection: redis.Redis) -> None:
    """Refuse a Redis that cannot be reached or refuses these credentials, saying what to fix."""
    where = _where(connection)
    try:
        connection.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:
        text = str(exc)
        if isinstance(exc, redis.ResponseError) and "AUTH" not in text:
            raise
        if "required" in text.lower() or "NOAUTH" in text:
            raise ConfigurationError(
                f"the Redis at {where} needs a password ({exc}): put it in CITELINE_REDIS_URL, "
                "as redis://:PASSWORD@host:6379/0"
            ) from exc
        raise ConfigurationError(
            f"the Redis at {where} refused the credentials in CITELINE_REDIS_URL ({exc}): put "
            "the right password in the URL, as redis://:PASSWORD@host:6379/0"
        ) from exc
    except redis.RedisError as exc:
        raise ConfigurationError(f"cannot connect to Redis at {where}: {exc}") from exc


def _where(connection: redis.Redis) -> str:
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def connect_async(url: str, *, timeout: float | None = 5.0) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=5.0, socket_timeout=timeout, health_check_interval=30
    )


def queue(name: str, connection: redis.Redis) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=connection)


def events_key(job_id: uuid.UUID) -> str:
    return f"citeline:job:{job_id}:events"


def alive_key(job_id: uuid.UUID) -> str:
    return f"citeline:job:{job_id}:alive"


def cancel_key(job_id: uuid.UUID) -> str:
    return f"citeline:job:{job_id}:cancel"


def rq_job_id(job_id: uuid.UUID, attempt: int) -> str:
    """Each attempt is its own RQ job: RQ's bookkeeping of a dead attempt cannot touch the next."""
    return f"{job_id}_{attempt}"


REAPER_LOCK_KEY = "citeline:reaper:lock"
