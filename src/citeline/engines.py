"""Where the database and Redis are: the configured URLs, or embedded servers Citeline starts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from citeline.db.embedded import EmbeddedPostgres
from citeline.jobs.embedded import EmbeddedValkey
from citeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    embedded_database: bool
    embedded_redis: bool


@contextmanager
def running_engines(settings: Settings) -> Iterator[Endpoints]:
    """Yield the URLs to use, starting the embedded servers for whatever is not configured.

    The embedded servers outlive this block only if another process still holds them (a
    `serve` that was already running); the process that started Valkey is the one that stops it.
    """
    with ExitStack() as stack:
        data_dir = settings.data_path
        database_url = settings.database_url
        if database_url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            postgres = EmbeddedPostgres(data_dir)
            database_url = postgres.start()
            stack.callback(postgres.stop)
        redis_url = settings.redis_url
        if redis_url is None:
            valkey = EmbeddedValkey(data_dir)
            redis_url = valkey.start()
            stack.callback(valkey.stop)
        yield Endpoints(
            database_url,
            redis_url,
            embedded_database=settings.database_url is None,
            embedded_redis=settings.redis_url is None,
        )
