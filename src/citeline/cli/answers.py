"""`citeline ask` and `citeline eval`: grounded answers from the command line."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from citeline.answers.pipeline import AnswerOptions, answer
from citeline.cli.common import fail, load_settings, opened
from citeline.errors import CitelineError

KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name or id.")]


def ask(
    question: str,
    kb: KbOption,
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation (id printed after an answer)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model alias or name[@N]")] = None,
    k: Annotated[int | None, typer.Option(min=1, max=50, help="Passages to retrieve")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Answer QUESTION from a knowledge base, streaming the draft, then the verified answer
    with its citations. Runs in this process (the model loads here)."""
    settings = load_settings()

    def emit(type_: str, data: Mapping[str, Any]) -> None:
        if as_json:
            return
        if type_ == "retrieval":
            typer.secho(f"searching: {data['query']}", err=True, fg=typer.colors.BRIGHT_BLACK)
        elif type_ == "token":
            sys.stdout.write(str(data["text"]))
            sys.stdout.flush()

    try:
        conversation_id = uuid.UUID(conversation) if conversation else None
    except ValueError:
        typer.secho("error: --conversation must be a conversation id", err=True, fg="red")
        raise typer.Exit(2) from None
    try:
        with opened(settings) as resources:
            query, found, conversation_id = resources.answers().prepare(
                question, kb, conversation_id
            )
            result = answer(
                resources,
                query,
                found.id,
                emit=emit,
                conversation_id=conversation_id,
                options=AnswerOptions(k=k, model=model),
                owner="cli",
            )
    except CitelineError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
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
    unsupported = [s for s in result.get("dropped", []) if s["dropped"] == "unsupported"]
    if unsupported:
        typer.secho(
            f"\n{len(unsupported)} drafted sentence(s) had no supporting passage: left out.",
            fg=typer.colors.YELLOW,
        )
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
) -> None:
    """Score answers on questions with gold passages: retrieval Hit@1/Hit@5/MRR, citation
    precision and coverage, not-found rate, latency p50/p95 by stage."""
    from citeline.answers.evaluation import evaluate as run
    from citeline.answers.evaluation import load_questions

    settings = load_settings()
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
