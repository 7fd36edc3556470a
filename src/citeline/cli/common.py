"""What every CLI command shares: settings, logging, and opening the engines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from citeline.cli.remote import Output
from citeline.db import migrate
from citeline.engines import running_engines
from citeline.errors import CitelineError
from citeline.observability.logs import configure_logging
from citeline.resources import Resources
from citeline.settings import Settings


def load_settings(
    data_dir: Path | None = None,
    *,
    service: bool = False,
    announce: bool = False,
    **overrides: object,
) -> Settings:
    """The settings, and logging set up for the command: a service (`serve`, `worker`) logs as
    configured (JSON by default); any other command says only warnings and errors, in plain
    text, unless `--verbose`. With `announce`, say on stderr which data it works on."""
    values = {key: value for key, value in overrides.items() if value is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    settings = Settings(**values)  # type: ignore[arg-type]
    if service:
        configure_logging(settings.log_level, settings.log_format.value)
    elif Output.verbose:
        configure_logging(settings.log_level, "text")
    else:
        configure_logging("WARNING", "text")
    if announce:
        typer.secho(where(settings), err=True, fg=typer.colors.BRIGHT_BLACK)
    return settings


def where(settings: Settings) -> str:
    """Which data a machine command works on: the data directory, and the external database
    and Redis when configured instead of the embedded ones."""
    parts = [f"data directory {settings.data_path.resolve()}"]
    if settings.database_url:
        parts.append("external database")
    if settings.redis_url:
        parts.append("external Redis")
    return "using " + ", ".join(parts)


@contextmanager
def opened(settings: Settings) -> Iterator[Resources]:
    """Connect to (or start) the database and Redis, with the schema brought up to date."""
    with running_engines(settings) as endpoints:
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            migrate.upgrade(resources.engine)
            yield resources
        finally:
            resources.close()


def fail(error: CitelineError) -> typer.Exit:
    typer.secho(f"error: {error.detail}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2 if error.status < 500 else 1)
