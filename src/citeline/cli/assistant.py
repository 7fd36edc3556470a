"""`citeline assistant`: talk to the assistant on a running server, its reply streamed and
its tool calls shown as they run.

citeline assistant                        an interactive chat (type /quit to leave)
citeline assistant "question" [--kb NAME] one reply, for scripts (exit 1 if the run failed)
citeline assistant list | show ID | delete ID
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Annotated, Any

import typer
from typer._click import Context
from typer.core import TyperGroup

from citeline.cli.client import Client, CliError, Event
from citeline.cli.remote import JsonOption, client, print_json, table


class _QuestionFirst(TyperGroup):
    """`citeline assistant "question"` asks once; no argument opens the chat; a first word
    that names a subcommand runs it."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in {"--help", "-h"}):
            args = ["chat", *args]
        elif args[0] not in self.commands and args[0] not in {"--help", "-h"}:
            args = ["ask", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_QuestionFirst,
    help='The assistant: `citeline assistant` to chat, `citeline assistant "question"` once.',
)

KbsOption = Annotated[
    list[str] | None, typer.Option("--kb", help="Knowledge base it may search (repeat).")
]
ToolsOption = Annotated[
    list[str] | None, typer.Option("--tool", help="Allow only this tool (repeat).")
]
ModelOption = Annotated[str, typer.Option(help="Model alias or name[@N].")]
ConversationOption = Annotated[
    str | None, typer.Option("--conversation", "-c", help="Go on with this conversation.")
]
ApproveOption = Annotated[
    bool | None,
    typer.Option(
        "--approve/--deny",
        help="Answer tool calls that need approval without asking (default: ask on a "
        "terminal, deny otherwise).",
    ),
]


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    kb: KbsOption = None,
    tool: ToolsOption = None,
    model: ModelOption = "assistant",
    conversation: ConversationOption = None,
    approve: ApproveOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final event (reply, citations) as JSON.")
    ] = False,
) -> None:
    """Ask once: the reply streams to stdout, tool calls to stderr, then its citations."""
    server = client()
    conversation_id = conversation or _start(server, kb, tool, model)
    typer.secho(f"conversation {conversation_id}", err=True, fg=typer.colors.BRIGHT_BLACK)
    final = _turn(server, conversation_id, question, approve, quiet=as_json)
    if as_json:
        print_json(final)
    if final.get("type") != "complete":
        raise typer.Exit(1)


@app.command("chat")
def chat(
    kb: KbsOption = None,
    tool: ToolsOption = None,
    model: ModelOption = "assistant",
    conversation: ConversationOption = None,
    approve: ApproveOption = None,
) -> None:
    """Chat in the terminal; /quit (or end of input) leaves, the conversation stays."""
    server = client()
    conversation_id = conversation or _start(server, kb, tool, model)
    typer.secho(
        f"conversation {conversation_id} - /quit to leave", err=True, fg=typer.colors.BRIGHT_BLACK
    )
    while True:
        try:
            line = input("you> ")
        except EOFError:
            typer.echo("", err=True)
            return
        if line.strip() in {"/quit", "/exit"}:
            return
        if not line.strip():
            continue
        try:
            _turn(server, conversation_id, line, approve, quiet=False)
        except CliError as exc:
            typer.secho(f"error: {exc.message}", err=True, fg="red")


@app.command("list")
def list_conversations(
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List conversations, most recent first."""
    found = client().request("GET", "/v1/assistant/conversations", params={"limit": limit})
    rows = found["conversations"]
    if as_json:
        print_json(rows)
        return
    table(
        ["ID", "UPDATED", "TITLE"],
        [[c["id"], c["updated_at"][:16].replace("T", " "), c["title"]] for c in rows],
        empty="no conversations",
    )


@app.command("show")
def show(conversation_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show a conversation's messages and their citations."""
    got = client().request("GET", f"/v1/assistant/conversations/{conversation_id}")
    if as_json:
        print_json(got)
        return
    for message in got["messages"]:
        typer.secho(f"{message['role']}>", bold=True)
        typer.echo(message["content"])
        _citations(message["citations"], err=False)


@app.command("delete")
def delete(
    conversation_id: uuid.UUID,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a conversation with its messages and tool calls."""
    if not yes:
        typer.confirm(f"Delete conversation {conversation_id}?", abort=True)
    client().request("DELETE", f"/v1/assistant/conversations/{conversation_id}")
    typer.echo(f"deleted conversation {conversation_id}")


def _start(server: Client, kb: list[str] | None, tool: list[str] | None, model: str) -> str:
    body: dict[str, Any] = {"knowledge_bases": kb or [], "model": model}
    if tool:
        body["tools"] = tool
    made = server.request("POST", "/v1/assistant/conversations", json=body)
    return str(made["id"])


def _turn(
    server: Client, conversation_id: str, content: str, approve: bool | None, *, quiet: bool
) -> dict[str, Any]:
    """Send one message and show its run; the run's last typed event."""
    run = server.request(
        "POST", f"/v1/assistant/conversations/{conversation_id}/messages", json={"content": content}
    )
    final: dict[str, Any] = {"type": "error", "content": "the run ended without a reply"}
    streaming = False
    for event in server.follow(run["job_id"]):
        shown = _show(server, run["run_id"], event, approve, quiet, streaming)
        streaming = event.type == "token" or (streaming and event.type == "thinking")
        if event.type in ("complete", "error") and shown is not None:
            final = shown
        if event.type in {"failed", "stopped"}:
            reason = event.data.get("error") or event.data.get("reason") or event.type
            final = {"type": "error", "content": str(reason)}
            typer.secho(f"the run {event.type}: {reason}", err=True, fg="red")
    return final


def _show(
    server: Client,
    run_id: str,
    event: Event,
    approve: bool | None,
    quiet: bool,
    streaming: bool,
) -> dict[str, Any] | None:
    data = event.data
    content = str(data.get("content", ""))
    meta: dict[str, Any] = data.get("metadata") or {}
    if event.type == "token":
        if not quiet:
            typer.echo(content, nl=False)
            sys.stdout.flush()
    elif event.type == "tool_request":
        arguments = json.dumps(meta.get("arguments", {}), ensure_ascii=False)
        typer.secho(f"\n[tool] {content} {arguments}", err=True, fg="cyan")
        if meta.get("needs_approval"):
            _decide(server, run_id, content, approve)
    elif event.type == "tool_result":
        colour = "red" if meta.get("is_error") else typer.colors.BRIGHT_BLACK
        first = content.strip().splitlines()[0][:160] if content.strip() else "(empty)"
        typer.secho(f"[tool] {meta.get('name')} ({meta.get('duration_ms')} ms): {first}",
                    err=True, fg=colour)  # fmt: skip
    elif event.type == "error":
        typer.secho(f"\nerror: {content}", err=True, fg="red")
        return {"type": "error", "content": content, "metadata": meta}
    elif event.type == "complete":
        if not quiet:
            typer.echo("" if streaming else content)
            _citations(meta.get("citations", []), err=True)
        return {"type": "complete", "content": content, "metadata": meta}
    return None


def _decide(server: Client, run_id: str, name: str, approve: bool | None) -> None:
    if approve is None:
        approve = sys.stdin.isatty() and typer.confirm(f"Allow the call to {name}?", err=True)
    verb = "approve" if approve else "deny"
    server.request("POST", f"/v1/assistant/runs/{run_id}/{verb}")
    typer.secho(f"[tool] {name}: {verb}d", err=True, fg=typer.colors.BRIGHT_BLACK)


def _citations(citations: list[dict[str, Any]], *, err: bool) -> None:
    for citation in citations:
        if citation.get("kind") == "tool":
            where = f"tool {citation.get('tool')} (call {citation.get('tool_call_id')})"
        else:
            page = f", page {citation['page']}" if citation.get("page") else ""
            where = f"{citation.get('title') or citation.get('source')}{page}"
        quote = str(citation.get("quote") or citation.get("text") or "")[:120]
        typer.secho(f"  [{citation.get('marker')}] {where}: \"{quote}\"", err=err,
                    fg=typer.colors.BRIGHT_BLACK)  # fmt: skip
