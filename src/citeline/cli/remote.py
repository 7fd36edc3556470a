"""What the user commands share: the server they talk to, and how they print."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from citeline.cli.client import Client, CliError

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where embedded data lives (CITELINE_DATA_DIR).")
]
KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name or id.")]


class Output:
    """How much a command says on stderr: `--verbose` (before the command) asks for all."""

    verbose = False


class Target:
    """The server named by `--server` or `CITELINE_URL` (None: the last login, or local)."""

    server: str | None = None


def client() -> Client:
    return Client.connect(Target.server)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> None:
    """Columns as wide as their widest cell; the last one is left unpadded."""
    if not rows:
        typer.echo(empty)
        return
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        line = f"{line}  {row[-1]}" if len(row) > 1 else row[-1]
        typer.secho(line.rstrip(), bold=index == 0)


def knowledge_base(client: Client, ref: str) -> dict[str, Any]:
    """A knowledge base by its id or its name."""
    listed = client.request("GET", "/v1/knowledge-bases")["knowledge_bases"]
    for kb in listed:
        if ref in (kb["id"], kb["name"]):
            return dict(kb)
    raise CliError(f"knowledge base {ref} not found at {client.server}")
