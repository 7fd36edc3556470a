"""`citeline ask` and `citeline eval`: grounded answers from the command line."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from citeline.cli.client import CliError, ServerError, read_events
from citeline.cli.remote import DataDirOption, KbOption, client, print_json


def ask(
    question: str,
    kb: Annotated[
        str | None,
        typer.Option("--kb", help="Knowledge base name or id (default: the workspace's)."),
    ] = None,
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation (id printed after an answer)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model alias or name[@N]")] = None,
    k: Annotated[int | None, typer.Option(min=1, max=50, help="Passages to retrieve")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Answer QUESTION from a knowledge base on the server, streaming the draft, then the
    verified answer with its citations."""
    if conversation is not None:
        try:
            uuid.UUID(conversation)
        except ValueError:
            raise CliError("--conversation must be a conversation id") from None
    options = {key: value for key, value in {"k": k, "model": model}.items() if value}
    body = {
        "query": question,
        "knowledge_base": kb,
        "conversation_id": conversation,
        "options": options,
    }
    server = client()
    response = server.request(
        "POST", "/v1/answers", json=body, params={"stream": "true"}, stream=True, timeout=600
    )
    job_id = response.headers.get("X-Job-Id")
    ended = None
    with response:
        for event in read_events(response):
            if as_json:
                pass
            elif event.type == "retrieval":
                found = len(event.data.get("passages", []))
                typer.secho(
                    f"searching: {event.data.get('query')} ({found} passages)",
                    err=True,
                    fg=typer.colors.BRIGHT_BLACK,
                )
            elif event.type == "token":
                sys.stdout.write(str(event.data.get("text", "")))
                sys.stdout.flush()
            if event.terminal:
                ended = event
                break
    if ended is None:
        raise ServerError(f"the answer's event stream ended early (job {job_id})")
    if ended.type != "finished":
        error = ended.data.get("error") or {}
        reason = error.get("detail") or ended.data.get("reason") or ended.type
        raise ServerError(f"no answer: {reason}")
    result = server.request("GET", f"/v1/answers/{job_id}/result")
    if as_json:
        print_json(result)
        return
    show(result)


def show(result: Mapping[str, Any]) -> None:
    if result.get("draft"):
        typer.echo("\n")
    typer.secho("Answer" if result["status"] == "answered" else "Not found", bold=True)
    typer.echo(result["answer"])
    if result["citations"]:
        typer.echo("")
        for c in result["citations"]:
            page = f", page {c['page']}" if c["page"] is not None else ""
            typer.secho(
                f"[{c['marker']}] {c['title']} ({c['source']}{page}, "
                f"characters {c['start']}-{c['end']}, support {c['support']:.2f})",
                fg=typer.colors.CYAN,
            )
            typer.echo(f"    \u201c{c['text']}\u201d")
    elif result["status"] == "not_found" and result["passages"]:
        typer.echo("\nClosest passages:")
        for p in result["passages"]:
            typer.echo(f"  - {p['title']} ({p['source']}): {p['text'][:160]}...")
    if result["status"] == "answered" and result["citations"]:
        typer.secho("\nVerified: every sentence cited", fg=typer.colors.GREEN)
    unsupported = [s for s in result.get("dropped", []) if s["dropped"] == "unsupported"]
    if unsupported:
        typer.secho(
            f"\n{len(unsupported)} drafted sentence(s) had no supporting passage: left out.",
            fg=typer.colors.YELLOW,
        )
        for sentence in unsupported:
            typer.secho(f"  - {sentence['text']}", fg=typer.colors.YELLOW)
    if result.get("conversation_id"):
        typer.secho(
            f"\nconversation {result['conversation_id']}", fg=typer.colors.BRIGHT_BLACK, err=True
        )


def evaluate(
    kb: KbOption,
    questions: Annotated[Path, typer.Option(help="JSON lines: question, gold, page")],
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full report here (JSON)")] = None,
    model: Annotated[str | None, typer.Option(help="Model alias or name[@N]")] = None,
    judge: Annotated[
        str | None, typer.Option(help="Model that judges citations off the gold passage")
    ] = "default",
    data_dir: DataDirOption = None,
) -> None:
    """Score answers on questions with gold passages: retrieval Hit@1/Hit@5/MRR, citation
    precision and coverage, not-found rate, latency p50/p95 by stage. Runs on this machine,
    on its data directory, with the model loaded in this process."""
    from citeline.answers.evaluation import evaluate as run
    from citeline.answers.evaluation import load_questions
    from citeline.answers.pipeline import AnswerOptions
    from citeline.cli.common import fail, load_settings, opened
    from citeline.errors import CitelineError

    settings = load_settings(data_dir, announce=True)
    try:
        loaded = load_questions(questions, limit)
        with opened(settings) as resources:
            report = run(
                resources,
                kb,
                loaded,
                options=AnswerOptions(model=model),
                judge=judge or None,
                progress=lambda n, o: typer.secho(
                    f"{n}/{len(loaded)} {o.status:<9} {o.question.question[:70]}",
                    err=True,
                    fg=typer.colors.BRIGHT_BLACK,
                ),
            )
    except CitelineError as exc:
        raise fail(exc) from None
    except OSError as exc:
        typer.secho(f"error: cannot read {questions}: {exc.strerror}", err=True, fg="red")
        raise typer.Exit(2) from None
    summary = report.summary()
    typer.echo(json.dumps(summary, indent=2))
    if out is not None:
        detail = [
            {
                "question": o.question.question,
                "status": o.status,
                "answer": o.answer,
                "citations": o.citations,
                "precise": o.precise,
                "retrieved_on_gold": o.retrieved_on_gold,
                "timings": o.timings,
                "error": o.error,
            }
            for o in report.outcomes
        ]
        out.write_text(json.dumps({"summary": summary, "questions": detail}, indent=2))
