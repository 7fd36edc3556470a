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
        _refuse_newer(MigrationContext.configure(connection).get_current_revision())
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def check_current(engine: Engine) -> None:
    """Refuse to work on a schema other than this code's: a worker never migrates."""
    check_server(engine)
    current, head = current_revision(engine), head_revision()
    _refuse_newer(current)
    if current != head:
        raise ConfigurationError(
            f"the database schema is at revision {current or 'none (empty database)'}, "
            f"older than this Citeline's {head}: run `citeline migrate` (the migrate Job), "
            "or start `citeline serve`, which migrates, before the workers"
        )


def _refuse_newer(current: str | None) -> None:
    if current is not None and current not in _known_revisions():
        raise ConfigurationError(
            f"the database schema is at revision {current}, which this Citeline "
            f"({head_revision()}) does not know: a newer version migrated it. Run the newer "
            "version's image here too"
        )


def _known_revisions() -> set[str]:
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
