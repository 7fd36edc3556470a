"""`citeline agents`: the agent registry and its tasks, on a running server.

citeline agents list | show NAME[@N] | run NAME "input" [--priority high] [--no-wait]
citeline agents task TASK_ID | approve TASK_ID | reject TASK_ID | cancel TASK_ID
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import typer

from citeline.cli.client import Client, Event
from citeline.cli.remote import JsonOption, client, print_json, table

ENDED = {"finished", "failed", "stopped", "rejected"}

app = typer.Typer(
    help="Agents: list, show, run a task and follow its steps, review it.",
    no_args_is_help=True,
)


@app.command("list")
def list_agents(
    all_versions: Annotated[bool, typer.Option("--all", help="Every version.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List agents (their newest versions) with their status."""
    found = client().request("GET", "/v1/agents", params={"all_versions": all_versions})
    if as_json:
        print_json(found["agents"])
        return
    table(
        ["AGENT", "STATUS", "MODEL", "RUNNING", "QUEUED", "REVIEW", "ID"],
        [
            [
                a["label"],
                a["status"],
                a["model"],
                a["running"],
                a["queued"],
                a["waiting_review"],
                a["id"],
            ]
            for a in found["agents"]
        ],
        empty="no agents",
    )


@app.command("show")
def show_agent(
    ref: Annotated[str, typer.Argument(help="Agent id, name (newest version) or name@N.")],
    as_json: JsonOption = False,
) -> None:
    """Show an agent: status, model, tools, knowledge bases and its workflow."""
    server = client()
    agent = server.request("GET", f"/v1/agents/{ref}")
    if as_json:
        print_json(agent)
        return
    typer.secho(agent["label"], bold=True)
    reason = f" ({agent['status_reason']})" if agent.get("status_reason") else ""
    typer.echo(f"status       {agent['status']}{reason}")
    typer.echo(f"model        {agent['model']}")
    typer.echo(f"concurrency  {agent['concurrency']}")
    typer.echo(f"tools        {', '.join(agent['tools']) or '-'}")
    typer.echo(f"knowledge    {', '.join(agent['knowledge_bases']) or '-'}")
    typer.echo(f"versions     {agent['versions']}")
    typer.echo("workflow")
    for edge in agent["workflow"]["edges"]:
        when = f" [{edge['when']}]" if edge.get("when") else ""
        typer.echo(f"  {edge['from']} -> {edge['to']}{when}")


@app.command("run")
def run_agent(
    ref: Annotated[str, typer.Argument(help="Agent id, name or name@N.")],
    text: Annotated[str, typer.Argument(help="The task's input.")],
    priority: Annotated[
        Literal["high", "normal", "low"], typer.Option(help="high, normal or low.")
    ] = "normal",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow its steps to the end (default).")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Queue a task for the agent and follow its steps; prints its cited output."""
    server = client()
    created = server.request(
        "POST", f"/v1/agents/{ref}/tasks", json={"input": text, "priority": priority}
    )
    task_id = created["id"]
    typer.secho(f"task {task_id} ({priority})", err=True, fg=typer.colors.BRIGHT_BLACK)
    if not wait:
        typer.echo(task_id)
        return
    _follow(server, created)
    _result(server.request("GET", f"/v1/agents/tasks/{task_id}"), as_json)


@app.command("task")
def show_task(task_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show a task: status, each step, and its cited output."""
    _result(client().request("GET", f"/v1/agents/tasks/{task_id}"), as_json, steps=True)


@app.command("approve")
def approve_task(task_id: uuid.UUID, note: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Approve the review a task waits for; it runs on."""
    task = client().request("POST", f"/v1/agents/tasks/{task_id}/approve", json={"note": note})
    typer.echo(f"task {task_id}: {task['status']}")


@app.command("reject")
def reject_task(task_id: uuid.UUID, note: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Reject the review a task waits for; it stops."""
    task = client().request("POST", f"/v1/agents/tasks/{task_id}/reject", json={"note": note})
    typer.echo(f"task {task_id}: {task['status']}")


@app.command("cancel")
def cancel_task(task_id: uuid.UUID) -> None:
    """Stop a task."""
    task = client().request("POST", f"/v1/agents/tasks/{task_id}/cancel")
    typer.echo(f"task {task_id}: {task['status']}")


def _follow(server: Client, created: dict[str, Any]) -> None:
    """Print each step as it ends; stop at the end, or at a review the task waits for."""
    job_id = created["job_id"]
    if job_id is None:
        return
    for event in server.follow(job_id):
        _show_event(event)
        if event.type == "suspended":
            typer.secho(
                f"waiting for review: `citeline agents approve {created['id']}` (or reject)",
                err=True,
                fg="yellow",
            )
            return


def _show_event(event: Event) -> None:
    data = event.data
    if event.type == "step":
        calls = data.get("model_calls") or []
        tokens = sum(c.get("output_tokens", 0) for c in calls)
        extra = f", {tokens} tokens" if calls else ""
        cited = f", {data['citations']} citations" if data.get("citations") else ""
        typer.echo(f"  {data['node']:12} {data['type']:12} done{extra}{cited}", err=True)
    elif event.type == "deferred":
        typer.secho("  waiting for a free slot of the agent", err=True, fg="bright_black")
    elif event.type == "suspended":
        typer.secho(f"  {data.get('node')}: {data.get('instructions', '')}", err=True, bold=True)
    elif event.type in ("failed", "retrying"):
        typer.secho(f"  {event.type}: {data.get('reason', '')}", err=True, fg="red")


def _result(task: dict[str, Any], as_json: bool, *, steps: bool = False) -> None:
    if as_json:
        print_json(task)
        return
    typer.secho(f"{task['agent']}  {task['status']}", bold=True, err=True)
    if steps:
        for step in task["steps"]:
            typer.echo(f"  {step['seq']}. {step['node']} ({step['type']}): {step['status']}")
    if task.get("error"):
        typer.secho(f"error: {task['error']}", err=True, fg="red")
    if task.get("output"):
        typer.echo(task["output"])
        for citation in task.get("citations") or []:
            typer.echo(f"  [{citation['marker']}] {citation['title']}: {citation['text'][:160]}")
    if task["status"] in ENDED - {"finished"}:
        raise typer.Exit(1)
