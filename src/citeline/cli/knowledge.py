"""`citeline kb ...`, `citeline ingest`, `citeline search`, `citeline reindex`."""

from __future__ import annotations

import glob
import json
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from citeline.cli.common import fail, load_settings, opened
from citeline.errors import CitelineError, NotFound
from citeline.jobs.models import JobState
from citeline.knowledge.parsing import SUPPORTED_SUFFIXES
from citeline.knowledge.service import Upload, hit_json
from citeline.knowledge.storage import scratch_dir
from citeline.resources import Resources

kb_app = typer.Typer(help="Create, list and delete knowledge bases.", no_args_is_help=True)

KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name or id.")]


@kb_app.command("create")
def kb_create(
    name: str, description: Annotated[str, typer.Option(help="What it holds.")] = ""
) -> None:
    """Create a knowledge base."""
    try:
        with opened(load_settings()) as resources:
            kb = resources.knowledge().create(name, description)
    except CitelineError as exc:
        raise fail(exc) from exc
    typer.echo(f"created knowledge base {kb.name} ({kb.id})")


@kb_app.command("list")
def kb_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List knowledge bases."""
    with opened(load_settings()) as resources:
        service = resources.knowledge()
        rows = [(kb, service.count_documents(kb.id)) for kb in service.all()]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": str(kb.id),
                        "name": kb.name,
                        "chunks": kb.chunk_count,
                        "documents": counts,
                    }
                    for kb, counts in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo("no knowledge bases")
    for kb, counts in rows:
        typer.echo(
            f"{kb.name:30} {sum(counts.values()):6} documents {kb.chunk_count:8} chunks  {kb.id}"
        )


@kb_app.command("delete")
def kb_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a knowledge base with all its documents."""
    if not yes:
        typer.confirm(f"Delete knowledge base {name!r} and all its documents?", abort=True)
    try:
        with opened(load_settings()) as resources:
            resources.knowledge().delete(name)
    except CitelineError as exc:
        raise fail(exc) from exc
    typer.echo(f"deleted {name}")


def expand(paths: list[str]) -> list[tuple[Path, str]]:
    """Files named, found under directories (recursively), or matched by globs, with the name
    each is stored under (its path relative to the directory given)."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        matches = [Path(p) for p in glob.glob(given, recursive=True)] or [Path(given)]
        for match in matches:
            if match.is_dir():
                for file in sorted(match.rglob("*")):
                    if file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES:
                        found.append((file, file.relative_to(match).as_posix()))
            elif match.is_file():
                found.append((match, match.name))
            else:
                raise typer.BadParameter(f"{given}: no such file or directory", param_hint="PATH")
    return found


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or globs.")],
    kb: KbOption,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for ingestion.")] = True,
) -> None:
    """Add documents to a knowledge base (created if missing) and wait until they are indexed."""
    files = expand(paths)
    if not files:
        raise typer.BadParameter("no supported files found", param_hint="PATH")
    settings = load_settings()
    try:
        with opened(settings) as resources:
            service = resources.knowledge()
            try:
                base = service.get(kb)
            except NotFound:
                base = service.create(kb)
                typer.echo(f"created knowledge base {base.name}")
            scratch = scratch_dir(settings.data_path / "files")
            uploads = [Upload.copy_of(path, source, scratch) for path, source in files]
            outcomes = service.add(base.id, uploads)
            for outcome in outcomes:
                if outcome.status != "queued":
                    typer.echo(
                        f"{outcome.status:9} {outcome.source} {outcome.error or ''}".rstrip()
                    )
            job_ids = [o.job_id for o in outcomes if o.job_id]
            if not wait:
                for job_id in job_ids:
                    typer.echo(str(job_id))
                return
            failed = _wait(resources, job_ids)
            for document in service.documents(base.id):
                if document.status == "failed" and document.job_id in job_ids:
                    typer.echo(f"failed    {document.source}: {document.error}", err=True)
    except CitelineError as exc:
        raise fail(exc) from exc
    if failed:
        raise typer.Exit(code=1)


def _wait(resources: Resources, job_ids: list[uuid.UUID]) -> int:
    from rq import Worker

    if job_ids and Worker.count(connection=resources.redis) == 0:
        from citeline.resources import run_worker_process

        typer.echo("no worker is running; ingesting in this process", err=True)
        run_worker_process(
            resources.settings, resources.database_url, resources.redis_url, burst=True
        )
    jobs = resources.jobs()
    with typer.progressbar(length=len(job_ids), label="ingesting") as bar:
        ended: set[uuid.UUID] = set()
        while len(ended) < len(job_ids):
            for job_id in job_ids:
                if job_id not in ended and JobState(jobs.get(job_id).state).terminal:
                    ended.add(job_id)
                    bar.update(1)
            time.sleep(0.2)
    return sum(1 for job_id in job_ids if jobs.get(job_id).state != "finished")


def search(
    query: str,
    kb: KbOption,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many hits.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or dense.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search a knowledge base."""
    try:
        with opened(load_settings()) as resources:
            hits = [hit_json(h) for h in resources.knowledge().search(kb, query, k=k, mode=mode)]
    except CitelineError as exc:
        raise fail(exc) from exc
    if as_json:
        typer.echo(json.dumps({"hits": hits}, indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        where = " > ".join(hit["heading_path"]) or hit["title"] or ""
        page = f" p.{hit['page']}" if hit["page"] else ""
        typer.echo(f"{rank:2}. {hit['source']}{page} [{hit['start']}:{hit['end']}] {where}")
        typer.echo("    " + " ".join(hit["text"].split())[:200])


def reindex(kb: KbOption) -> None:
    """Re-chunk and re-embed a knowledge base with the current model and chunk settings."""
    try:
        with opened(load_settings()) as resources:
            job_ids = resources.knowledge().reindex(kb)
            failed = _wait(resources, job_ids)
    except CitelineError as exc:
        raise fail(exc) from exc
    typer.echo(f"reindexed {len(job_ids) - failed} documents, {failed} failed")
    if failed:
        raise typer.Exit(code=1)
