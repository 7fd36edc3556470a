"""The database layer against real servers: the embedded PostgreSQL 18, the external 15."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from sqlalchemy import text

from citeline.db import migrate
from citeline.db.engine import make_engine, normalise_url
from citeline.errors import ConfigurationError
from tests.conftest import ROOT

EXTERNAL_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _external_pg_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


needs_external_pg = pytest.mark.skipif(
    not _external_pg_answers(), reason="no PostgreSQL at 127.0.0.1:5432"
)


def test_embedded_server_has_pgvector_and_the_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
        assert connection.execute(text("SELECT count(*) FROM jobs")).scalar() is not None
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.upgrade(engine)  # a second run is a no-op
    engine.dispose()


@needs_external_pg
def test_external_server_without_pgvector_is_refused_with_instructions() -> None:
    engine = make_engine(EXTERNAL_PG)
    with pytest.raises(ConfigurationError) as refused:
        migrate.upgrade(engine)
    engine.dispose()
    message = refused.value.detail
    assert "does not have the pgvector extension" in message
    assert "CREATE EXTENSION vector" in message
    assert "unset CITELINE_DATABASE_URL" in message


@needs_external_pg
def test_serve_refuses_external_server_without_pgvector(
    tmp_path: object, embedded_redis_url: str
) -> None:
    env = {
        "CITELINE_DATABASE_URL": EXTERNAL_PG,
        "CITELINE_REDIS_URL": embedded_redis_url,
        "CITELINE_DATA_DIR": str(tmp_path),
        "CITELINE_WORKERS": "0",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "citeline", "serve", "--port", "8799"],
        env=env,
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "pgvector" in done.stderr


def test_unreachable_server_is_a_clear_configuration_error() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)
    with pytest.raises(ConfigurationError, match="cannot connect to the database"):
        migrate.upgrade(engine)
    engine.dispose()


def test_urls_are_normalised_to_psycopg() -> None:
    assert normalise_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("postgresql+psycopg2://h/db") == "postgresql+psycopg://h/db"
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        normalise_url("mysql://h/db")


def test_the_migrations_make_the_schema_the_models_describe(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from citeline.schema import Base

    def compared(obj: object, name: str | None, kind: str, reflected: bool, _: object) -> bool:
        # Each knowledge base's HNSW index is made at run time, not by a migration.
        return not (kind == "index" and (name or "").startswith("ix_chunks_hnsw_"))

    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": compared}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []
