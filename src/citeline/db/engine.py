"""Engine and session factory for one database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Executable, Row, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from citeline.errors import ServiceUnavailable


def normalise_url(url: str) -> str:
    """Use psycopg 3 whatever driver the URL names (postgres://, postgresql://)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"Citeline needs PostgreSQL, got a {parsed.get_backend_name()} URL")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def make_engine(
    url: str,
    *,
    connect_timeout: int = 5,
    pool_size: int = 10,
    wait_for_flush: bool = True,
    pre_ping: bool = True,
) -> Engine:
    """An engine with bounded waits. `wait_for_flush=False` commits without waiting for the WAL
    flush: a PostgreSQL crash may then lose the last fraction of a second, a process crash never.
    `pre_ping=False` saves a round trip per checkout; its user must retry a stale connection
    (see `Statements`)."""
    options = "" if wait_for_flush else "-c synchronous_commit=off"
    return create_engine(
        normalise_url(url),
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_timeout=connect_timeout,
        connect_args={
            "connect_timeout": connect_timeout,
            "application_name": "citeline",
            "options": options,
        },
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed when the block ends cleanly and rolled back otherwise."""
    try:
        with factory.begin() as session:
            yield session
    except OperationalError as exc:
        raise ServiceUnavailable(f"database unavailable: {_first_line(exc)}") from exc


class Statements:
    """Runs self-contained statements on the hot paths (a job's state changes) in as few round
    trips as possible: outside a transaction block (autocommit), where BEGIN, the statement and
    COMMIT would take three; and on an engine that does not ping each connection it checks out,
    retrying once instead when a pooled connection turns out to be stale (a database restart).
    A single statement is atomic on its own, which is all such a change needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def run(self, statement: Executable, params: Any) -> list[Row[Any]]:
        for attempt in (1, 2):
            try:
                with self.engine.connect() as connection:
                    result = connection.execute(statement, params)
                    return list(result.all()) if result.returns_rows else []
            except DBAPIError as exc:
                if exc.connection_invalidated and attempt == 1:
                    continue  # the pool was emptied; the next connection is fresh
                if isinstance(exc, OperationalError):
                    raise ServiceUnavailable(f"database unavailable: {_first_line(exc)}") from exc
                raise
        raise AssertionError("unreachable")


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise ServiceUnavailable(f"database unavailable: {_first_line(exc)}") from exc


def _first_line(exc: OperationalError) -> str:
    return str(exc.orig or exc).strip().splitlines()[0]
