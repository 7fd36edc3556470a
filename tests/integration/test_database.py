"""The database layer against real servers: the embedded PostgreSQL 18, the external 15."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

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


@pytest.fixture
def other_database(database_url: str) -> Iterator[str]:
    """A second, empty database on the embedded server."""
    name = f"citeline_schema_{uuid.uuid4().hex[:8]}"
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(normalise_url(database_url)).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.engine.dispose()


def test_a_schema_other_than_this_codes_is_refused_with_what_to_do(
    other_database: str, embedded_redis_url: str, tmp_path: Path
) -> None:
    engine = make_engine(other_database)
    with pytest.raises(ConfigurationError, match=r"none \(empty database\).*citeline migrate"):
        migrate.check_current(engine)
    migrate.upgrade(engine, "0001")
    with pytest.raises(ConfigurationError, match="older than this Citeline's"):
        migrate.check_current(engine)
    env = {
        "CITELINE_DATABASE_URL": other_database,
        "CITELINE_REDIS_URL": embedded_redis_url,
        "CITELINE_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "citeline", "worker"],
        env=env, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 1
    assert "run `citeline migrate`" in worker.stderr
    assert "Traceback" not in worker.stderr
    migrate.upgrade(engine)
    migrate.check_current(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999_from_the_future'"))
    for refuse in (migrate.check_current, migrate.upgrade):
        with pytest.raises(ConfigurationError, match="a newer version migrated it"):
            refuse(engine)
    engine.dispose()


def test_replicas_starting_together_migrate_once(other_database: str) -> None:
    """Several `serve` replicas upgrading one empty database at once: the advisory lock
    makes them take turns, so each finds the schema done or does it alone."""
    engines = [make_engine(other_database) for _ in range(3)]
    with ThreadPoolExecutor(len(engines)) as pool:
        for done in [pool.submit(migrate.upgrade, engine) for engine in engines]:
            done.result(timeout=120)  # re-raises a replica's error
    assert migrate.current_revision(engines[0]) == migrate.head_revision()
    for engine in engines:
        engine.dispose()
