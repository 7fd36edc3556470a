"""`citeline kb ...`, `citeline documents ...`, `citeline ingest`, `citeline search`,
`citeline reindex`: knowledge bases on the server."""

from __future__ import annotations

import glob
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from citeline.cli.client import Client, CliError
from citeline.cli.remote import JsonOption, KbOption, client, knowledge_base, print_json, table

kb_app = typer.Typer(help="Create, list and delete knowledge bases.", no_args_is_help=True)
documents_app = typer.Typer(help="The documents of a knowledge base.", no_args_is_help=True)

UPLOAD_BATCH_FILES = 100
UPLOAD_BATCH_BYTES = 64 * 2**20


@kb_app.command("create")
def kb_create(
    name: str, description: Annotated[str, typer.Option(help="What it holds.")] = ""
) -> None:
    """Create a knowledge base."""
    kb = client().request(
        "POST", "/v1/knowledge-bases", json={"name": name, "description": description}
    )
    typer.echo(f"created knowledge base {kb['name']} ({kb['id']})")


@kb_app.command("list")
def kb_list(as_json: JsonOption = False) -> None:
    """List knowledge bases with their documents by status."""
    server = client()
    rows = []
    for kb in server.request("GET", "/v1/knowledge-bases")["knowledge_bases"]:
        counts = kb.pop("document_counts", None)
        if counts is None:  # a server older than the listing's counts
            documents = server.request("GET", f"/v1/knowledge-bases/{kb['id']}/documents")
            counts = dict(Counter(d["status"] for d in documents["documents"]))
        rows.append({**kb, "documents": counts})
    if as_json:
        print_json([{**r, "chunks": r["chunk_count"]} for r in rows])
        return
    table(
        ["NAME", "DOCUMENTS", "CHUNKS", "ID"],
        [[r["name"], _counts(r["documents"]), r["chunk_count"], r["id"]] for r in rows],
        empty=f"no knowledge bases at {server.server}",
    )


def _counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "ready")
    return f"{total} ({others})" if others else str(total)


@kb_app.command("delete")
def kb_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a knowledge base with all its documents."""
    server = client()
    kb = knowledge_base(server, name)
    if not yes:
        typer.confirm(f"Delete knowledge base {kb['name']!r} and all its documents?", abort=True)
    server.request("DELETE", f"/v1/knowledge-bases/{kb['id']}")
    typer.echo(f"deleted {kb['name']}")


@documents_app.command("list")
def documents_list(kb: KbOption, as_json: JsonOption = False) -> None:
    """The documents of a knowledge base with their status."""
    server = client()
    found = knowledge_base(server, kb)
    documents = server.request("GET", f"/v1/knowledge-bases/{found['id']}/documents")
    if as_json:
        print_json(documents["documents"])
        return
    table(
        ["SOURCE", "STATUS", "CHUNKS", "ID"],
        [[d["source"], d["status"], d["chunk_count"], d["id"]] for d in documents["documents"]],
        empty=f"no documents in {found['name']}",
    )
    for d in documents["documents"]:
        if d["status"] == "failed" and d["error"]:
            typer.secho(f"failed: {d['source']}: {d['error']}", fg=typer.colors.YELLOW, err=True)


@documents_app.command("delete")
def documents_delete(
    source: Annotated[str, typer.Argument(help="The document's source name or id.")],
    kb: KbOption,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete one document from a knowledge base."""
    server = client()
    found = knowledge_base(server, kb)
    documents = server.request("GET", f"/v1/knowledge-bases/{found['id']}/documents")
    match = [d for d in documents["documents"] if source in (d["id"], d["source"])]
    if not match:
        raise CliError(f"no document {source} in {found['name']}")
    if not yes:
        typer.confirm(f"Delete {match[0]['source']} from {found['name']}?", abort=True)
    server.request("DELETE", f"/v1/knowledge-bases/{found['id']}/documents/{match[0]['id']}")
    typer.echo(f"deleted {match[0]['source']}")


def expand(paths: list[str], suffixes: set[str]) -> list[tuple[Path, str]]:
    """Files named, found under directories (recursively, supported types only), or matched
    by globs, with the name each is stored under (its path relative to the directory given)."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        matches = [Path(p) for p in glob.glob(given, recursive=True)] or [Path(given)]
        for match in matches:
            if match.is_dir():
                for file in sorted(match.rglob("*")):
                    if file.is_file() and file.suffix.lower() in suffixes:
                        found.append((file, file.relative_to(match).as_posix()))
            elif match.is_file():
                found.append((match, match.name))
            else:
                raise typer.BadParameter(f"{given}: no such file or directory", param_hint="PATH")
    return found


def _batches(files: list[tuple[Path, str]]) -> list[list[tuple[Path, str]]]:
    batches: list[list[tuple[Path, str]]] = [[]]
    size = 0
    for file in files:
        length = file[0].stat().st_size
        if batches[-1] and (
            len(batches[-1]) >= UPLOAD_BATCH_FILES or size + length > UPLOAD_BATCH_BYTES
        ):
            batches.append([])
            size = 0
        batches[-1].append(file)
        size += length
    return batches


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or globs.")],
    kb: KbOption,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for ingestion.")] = True,
) -> None:
    """Upload documents to a knowledge base (created if missing) and wait until they are
    indexed."""
    server = client()
    formats = server.request("GET", "/v1/knowledge-bases/formats")
    files = expand(paths, set(formats["suffixes"]))
    if not files:
        raise typer.BadParameter("no supported files found", param_hint="PATH")
    try:
        base = knowledge_base(server, kb)
    except CliError:
        base = server.request("POST", "/v1/knowledge-bases", json={"name": kb})
        typer.echo(f"created knowledge base {base['name']}")
    job_ids: list[str] = []
    rejected = 0
    for batch in _batches(files):
        answer = server.upload(f"/v1/knowledge-bases/{base['id']}/documents", batch)
        for outcome in answer["documents"]:
            if outcome["status"] != "queued":
                rejected += outcome["status"] == "rejected"
                typer.echo(f"{outcome['status']:9} {outcome['source']} {outcome['error'] or ''}")
        job_ids += [str(job_id) for job_id in answer["job_ids"]]
    if not wait:
        for job_id in job_ids:
            typer.echo(job_id)
        return
    failed = wait_for_jobs(server, job_ids, "ingesting")
    if failed:
        documents = server.request("GET", f"/v1/knowledge-bases/{base['id']}/documents")
        for document in documents["documents"]:
            if document["status"] == "failed" and document["job_id"] in job_ids:
                typer.echo(f"failed    {document['source']}: {document['error']}", err=True)
    if failed or rejected:
        raise typer.Exit(code=1)


def wait_for_jobs(server: Client, job_ids: list[str], label: str) -> int:
    """Poll the jobs until each has ended, with a progress bar; how many did not finish."""
    states: dict[str, str] = {}
    with typer.progressbar(length=len(job_ids), label=label, file=None) as bar:
        while len(states) < len(job_ids):
            for job_id in job_ids:
                if job_id in states:
                    continue
                job = server.request("GET", f"/v1/jobs/{job_id}")
                if job["state"] in {"finished", "failed", "stopped"}:
                    states[job_id] = job["state"]
                    bar.update(1)
            if len(states) < len(job_ids):
                time.sleep(0.3)
    return sum(1 for state in states.values() if state != "finished")


def search(
    query: str,
    kb: KbOption,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many hits.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or dense.")] = "hybrid",
    as_json: JsonOption = False,
) -> None:
    """Search a knowledge base."""
    server = client()
    found = knowledge_base(server, kb)
    answer: dict[str, Any] = server.request(
        "GET",
        f"/v1/knowledge-bases/{found['id']}/search",
        params={"q": query, "k": k, "mode": mode},
    )
    if as_json:
        print_json(answer)
        return
    if not answer["hits"]:
        typer.echo(f"nothing in {found['name']} matches")
    for rank, hit in enumerate(answer["hits"], start=1):
        where = " > ".join(hit["heading_path"]) or hit["title"] or ""
        page = f" p.{hit['page']}" if hit["page"] else ""
        typer.echo(f"{rank:2}. {hit['source']}{page} [{hit['start']}:{hit['end']}] {where}")
        typer.echo("    " + " ".join(hit["text"].split())[:200])


def reindex(kb: KbOption) -> None:
    """Re-chunk and re-embed a knowledge base with the server's current model and chunk
    settings."""
    server = client()
    found = knowledge_base(server, kb)
    job_ids = server.request("POST", f"/v1/knowledge-bases/{found['id']}/reindex")["job_ids"]
    failed = wait_for_jobs(server, [str(j) for j in job_ids], "re-indexing")
    typer.echo(f"reindexed {len(job_ids) - failed} documents, {failed} failed")
    if failed:
        raise typer.Exit(code=1)
