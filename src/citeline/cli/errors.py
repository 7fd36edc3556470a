"""The CLI's own failures: one sentence for the person at the terminal, and an exit code."""

from __future__ import annotations

from typing import Any

import typer

# typer 0.29 carries its own copy of click: only its ClickException is caught and shown.
from typer._click.exceptions import ClickException


class CliError(ClickException):
    """A failure told in one sentence; exit code 2: the caller's mistake (bad input, not
    signed in, not found, refused)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        typer.secho(f"error: {self.message}", err=True, fg=typer.colors.RED)


class ServerError(CliError):
    """The server or the network failed: the same command may work later (exit code 1)."""

    exit_code = 1
