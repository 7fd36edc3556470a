"""`citeline report`: start a cited report on a running server, watch its sections, export it.

citeline report "topic" --kb NAME [--kb OTHER] [--sections N] [--format pdf -o FILE]
citeline report list | show ID | export ID --format docx -o FILE | retry ID | cancel ID
citeline report delete ID
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer._click import Context
from typer.core import TyperGroup

from citeline.cli.client import Client, CliError, Event
from citeline.cli.remote import JsonOption, client, print_json, table

Format = Literal["md", "html", "pdf", "docx"]
FormatOption = Annotated[
    Format | None, typer.Option("--format", "-f", help="md, html, pdf or docx.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the export here (default: print Markdown)."),
]
ENDED = {"finished", "partial", "not_found", "failed", "stopped"}


class _TopicFirst(TyperGroup):
    """`citeline report "topic" ...` starts a report; a first word that names a subcommand
    (`list`, `show`, ...) runs that instead."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in {"--help", "-h"}:
            args = ["new", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_TopicFirst,
    help='Cited reports: `citeline report "topic" --kb NAME`, then list, show, export, ...',
    no_args_is_help=True,
)


@app.command("new")
def new_report(
    topic: Annotated[str, typer.Argument(help="What the report is about.")],
    kb: Annotated[
        list[str], typer.Option("--kb", help="Knowledge base name or id (repeat for more).")
    ],
    sections: Annotated[int, typer.Option(min=1, max=12, help="How many sections.")] = 5,
    outline: Annotated[
        list[str] | None,
        typer.Option("--section", help="A section title you fix (repeat, in order)."),
    ] = None,
    instructions: Annotated[str, typer.Option(help="Audience, tone, what to stress.")] = "",
    model: Annotated[str, typer.Option(help="Model alias or name[@N].")] = "report",
    fmt: FormatOption = None,
    output: OutputOption = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow it to the end (default).")
    ] = True,
) -> None:
    """Write a report on TOPIC from knowledge bases: one job plans it, one per section
    researches and writes, the last assembles it with every sentence cited. Shows each
    section as it ends, then prints the report (Markdown) or writes it with -o."""
    server = client()
    body: dict[str, Any] = {
        "topic": topic,
        "knowledge_bases": kb,
        "sections": len(outline) if outline else sections,
        "instructions": instructions,
        "model": model,
    }
    if outline:
        body["outline"] = outline
    created = server.request("POST", "/v1/reports", json=body)
    report_id = created["report_id"]
    typer.secho(f"report {report_id}", err=True, fg=typer.colors.BRIGHT_BLACK)
    if not wait:
        typer.echo(report_id)
        return
    report = _follow(server, report_id, created["job_id"])
    _finish(server, report, fmt, output)


@app.command("list")
def list_reports(
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List reports, newest first."""
    reports = client().request("GET", "/v1/reports", params={"limit": limit})["reports"]
    if as_json:
        print_json(reports)
        return
    table(
        ["ID", "STATUS", "CREATED", "TITLE"],
        [
            [r["id"], r["status"], r["created_at"][:16].replace("T", " "), r["title"] or r["topic"]]
            for r in reports
        ],
        empty="no reports",
    )


@app.command("show")
def show_report(report_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show a report's status, its sections and timings."""
    report = client().request("GET", f"/v1/reports/{report_id}")
    if as_json:
        print_json(report)
        return
    _summary(report)


@app.command("export")
def export_report(
    report_id: uuid.UUID,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="md, html, pdf or docx.")] = "md",
    output: OutputOption = None,
) -> None:
    """Export a finished report; every citation stays a numbered link to its reference."""
    _export(client(), str(report_id), fmt, output)


@app.command("retry")
def retry_report(
    report_id: uuid.UUID,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow it to the end.")] = True,
) -> None:
    """Run again only the sections that failed, were stopped or found nothing."""
    server = client()
    created = server.request("POST", f"/v1/reports/{report_id}/retry")
    if wait:
        _summary(_follow(server, str(report_id), created["job_id"]))


@app.command("cancel")
def cancel_report(report_id: uuid.UUID) -> None:
    """Stop a report: its queued and running sections stop too."""
    report = client().request("POST", f"/v1/reports/{report_id}/cancel")
    typer.echo(f"report {report_id}: {report['status']}")


@app.command("delete")
def delete_report(
    report_id: uuid.UUID,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a report and its exports."""
    if not yes:
        typer.confirm(f"Delete report {report_id}?", abort=True)
    client().request("DELETE", f"/v1/reports/{report_id}")
    typer.echo(f"deleted report {report_id}")


def _follow(server: Client, report_id: str, job_id: str) -> dict[str, Any]:
    """Print the run's events as they come; the report as it ended."""
    for event in server.follow(job_id):
        _show_event(event)
    return dict(server.request("GET", f"/v1/reports/{report_id}"))


def _show_event(event: Event) -> None:
    data = event.data
    if event.type == "outline":
        typer.secho(data.get("title") or "Outline", bold=True, err=True)
        for number, section in enumerate(data.get("sections", []), 1):
            typer.echo(f"  {number}. {section['title']}", err=True)
    elif event.type == "section.started":
        typer.echo(f"  writing   {data['section']}. {data.get('title', '')}", err=True)
    elif event.type == "section.finished":
        sentences = data.get("sentences", 0)
        typer.echo(
            f"  {data['status']:9} {data['section']}. ({sentences} cited sentences)", err=True
        )
    elif event.type == "section.failed":
        typer.secho(f"  failed    {data['section']}. {data.get('reason', '')}", err=True, fg="red")
    elif event.type == "report.not_found":
        typer.secho("the knowledge bases say nothing about this topic", err=True, fg="yellow")
    elif event.type == "progress" and data.get("message"):
        typer.secho(f"  {data['message']}", err=True, fg=typer.colors.BRIGHT_BLACK)


def _finish(
    server: Client, report: dict[str, Any], fmt: Format | None, output: Path | None
) -> None:
    status = report["status"]
    if status in {"finished", "partial"}:
        if status == "partial":
            typer.secho(
                f"partial: some sections could not be grounded; `citeline report retry "
                f"{report['id']}` runs them again",
                err=True,
                fg="yellow",
            )
        _export(server, report["id"], fmt or _format_of(output), output)
        return
    _summary(report)
    raise typer.Exit(1)


def _format_of(output: Path | None) -> Format:
    suffix = output.suffix.lower().lstrip(".") if output else "md"
    formats: dict[str, Format] = {
        "md": "md",
        "markdown": "md",
        "html": "html",
        "htm": "html",
        "pdf": "pdf",
        "docx": "docx",
    }
    if suffix not in formats:
        raise CliError(f"cannot tell the format from {output}: add --format md|html|pdf|docx")
    return formats[suffix]


def _export(server: Client, report_id: str, fmt: Format, output: Path | None) -> None:
    """Stream the export to OUTPUT (written whole or not at all), or Markdown to stdout."""
    if output is None and fmt != "md":
        raise CliError(f"a {fmt} export is a file: add -o FILE")
    response = server.request(
        "GET", f"/v1/reports/{report_id}/export", params={"format": fmt}, stream=True
    )
    with response:
        if output is None:
            typer.echo(response.read().decode())
            return
        target = output.expanduser()
        descriptor, partial = tempfile.mkstemp(dir=target.parent or Path.cwd(), suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as file:
                while chunk := response.read(64 * 1024):
                    file.write(chunk)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    typer.echo(f"wrote {target} ({target.stat().st_size:,} bytes)", err=True)


def _summary(report: dict[str, Any]) -> None:
    typer.secho(report["title"] or report["topic"], bold=True)
    typer.echo(f"status    {report['status']}")
    if report.get("error"):
        typer.echo(f"error     {report['error']}")
    timings = report.get("timings") or {}
    for name, seconds in timings.items():
        if seconds is not None:
            typer.echo(f"{name.replace('_', ' '):9} {seconds:.1f} s")
    for section in report.get("sections", []):
        detail = f" ({section['error']})" if section.get("error") else ""
        typer.echo(
            f"  {section['ordinal']}. {section['title']}: {section['status']}, "
            f"{len(section['sentences'])} sentences{detail}"
        )
    for passage in report.get("closest") or []:
        typer.echo(f"  closest: {passage.get('title', '')}: {passage.get('text', '')[:120]}")
