"""`citeline jobs list|show|cancel`."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer

from citeline.cli.common import fail, load_settings, opened
from citeline.errors import CitelineError
from citeline.jobs.models import JobState
from citeline.jobs.schemas import JobOut

app = typer.Typer(help="Inspect and cancel background jobs.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
def list_jobs(
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent jobs, newest first."""
    settings = load_settings()
    with opened(settings) as resources:
        jobs = [
            JobOut.of(job) for job in resources.jobs().list(state=state, kind=kind, limit=limit)
        ]
    if as_json:
        typer.echo(json.dumps([job.model_dump(mode="json") for job in jobs], indent=2))
        return
    if not jobs:
        typer.echo("no jobs")
        return
    typer.echo(f"{'ID':36}  {'KIND':20}  {'STATE':9}  {'PROGRESS':>8}  CREATED")
    for job in jobs:
        typer.echo(
            f"{job.id!s:36}  {job.kind[:20]:20}  {job.state:9}  {job.progress:>8.0%}  "
            f"{job.created_at:%Y-%m-%d %H:%M:%S}"
        )


@app.command("show")
def show_job(job_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show one job, its timings and error."""
    settings = load_settings()
    try:
        with opened(settings) as resources:
            job = JobOut.of(resources.jobs().get(job_id))
    except CitelineError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(job.model_dump_json(indent=2))
        return
    for key, value in job.model_dump(mode="json").items():
        typer.echo(f"{key:17} {value}")


@app.command("cancel")
def cancel_job(job_id: uuid.UUID) -> None:
    """Cancel a queued or running job."""
    settings = load_settings()
    try:
        with opened(settings) as resources:
            job = resources.jobs().cancel(job_id)
    except CitelineError as exc:
        raise fail(exc) from exc
    typer.echo(f"job {job.id} is {job.state}")
