"""Bring a database to the latest schema, refusing servers that cannot hold Citeline's data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from citeline.errors import ConfigurationError

MIGRATIONS = Path(__file__).parent / "migrations"
MIN_SERVER_VERSION = 150000


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def check_server(engine: Engine) -> None:
    """Refuse a server that is too old or lacks pgvector, saying how to fix it."""
    where = make_url(engine.url).render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            version = int(connection.execute(text("SHOW server_version_num")).scalar_one())
            has_vector = connection.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
    except OperationalError as exc:
        raise ConfigurationError(f"cannot connect to the database at {where}: {exc.orig}") from exc
    if version < MIN_SERVER_VERSION:
        raise ConfigurationError(
            f"the PostgreSQL server at {where} is version {version // 10000}; "
            "Citeline needs 15 or newer"
        )
    if has_vector is None:
        raise ConfigurationError(
            f"the PostgreSQL server at {where} does not have the pgvector extension, which "
            "Citeline needs for vector search. Install it on that server (Debian/Ubuntu: "
            "`apt install postgresql-<version>-pgvector`; or use the pgvector/pgvector image), "
            "then "
            "run `CREATE EXTENSION vector;` as a superuser in that database. Or unset "
            "CITELINE_DATABASE_URL to use the embedded PostgreSQL, which includes pgvector."
        )


def upgrade(engine: Engine, revision: str = "head") -> None:
    check_server(engine)
    config = alembic_config()
    with engine.begin() as connection:
        # Serialise concurrent starts (several `serve` or test processes on one database).
        connection.execute(text("SELECT pg_advisory_xact_lock(7263010001)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
