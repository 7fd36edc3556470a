"""`citeline jobs list|show|cancel|follow`: background jobs on the server."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

import typer

from citeline.cli.remote import JsonOption, client, print_json, table

app = typer.Typer(help="Inspect, follow and cancel background jobs.", no_args_is_help=True)

State = Literal["queued", "started", "waiting", "finished", "failed", "stopped"]


@app.command("list")
def list_jobs(
    state: Annotated[State | None, typer.Option(help="Only jobs in this state.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent jobs, newest first."""
    jobs = client().request(
        "GET", "/v1/jobs", params={"state": state, "kind": kind, "limit": limit}
    )["jobs"]
    if as_json:
        print_json(jobs)
        return
    table(
        ["ID", "KIND", "STATE", "PROGRESS", "CREATED"],
        [
            [
                job["id"],
                job["kind"],
                job["state"],
                f"{job['progress']:.0%}",
                job["created_at"][:19].replace("T", " "),
            ]
            for job in jobs
        ],
        empty="no jobs",
    )


@app.command("show")
def show_job(job_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show one job, its timings and error."""
    job = client().request("GET", f"/v1/jobs/{job_id}")
    if as_json:
        print_json(job)
        return
    for key, value in job.items():
        if value not in (None, "", [], {}):
            shown = json.dumps(value) if isinstance(value, (dict, list)) else value
            typer.echo(f"{key:17} {shown}")


@app.command("cancel")
def cancel_job(job_id: uuid.UUID) -> None:
    """Cancel a queued or running job."""
    job = client().request("POST", f"/v1/jobs/{job_id}/cancel")
    typer.echo(f"job {job['id']} is {job['state']}")


@app.command("follow")
def follow_job(
    job_id: uuid.UUID,
    after: Annotated[int, typer.Option(min=0, help="Start after this event number.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
) -> None:
    """Print a job's events as they happen, until it ends."""
    last = None
    for event in client().follow(job_id, after):
        last = event
        if as_json:
            typer.echo(json.dumps({"seq": event.seq, "type": event.type, "data": event.data}))
        else:
            typer.echo(f"{event.seq:5} {event.type:10} {json.dumps(event.data)[:160]}")
    if last is not None and last.type != "finished":
        raise typer.Exit(code=1)
