"""The machine commands of `citeline` (run on the server's machine, on its data) against the
real engines; the user commands, which talk to a server, are in tests/e2e/test_cli.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from citeline.db.migrate import head_revision
from citeline.resources import Resources
from tests.conftest import settings_env

pytestmark = pytest.mark.slow


def citeline(resources: Resources, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citeline", *args],
        env={**settings_env(resources.settings), "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_worker_queues_fail_clearly(resources: Resources) -> None:
    bad_queue = citeline(resources, "worker", "--queues", "urgent", "--burst")
    assert bad_queue.returncode == 2
    assert "unknown queues" in bad_queue.stderr


@pytest.mark.parametrize(
    "command",
    [[], ["serve"], ["worker"], ["jobs"], ["jobs", "list"], ["migrate"], ["login"], ["kb"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "citeline", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0
    assert "Usage" in shown.stdout


def test_migrate_and_version(resources: Resources) -> None:
    migrated = citeline(resources, "migrate")
    assert migrated.returncode == 0
    assert f"revision {head_revision()}" in migrated.stdout
    assert citeline(resources, "version").stdout.strip() == "0.1.0"


def test_create_admin_works_on_the_data_directory(resources: Resources) -> None:
    """The one account command that needs no server (the others: tests/e2e/test_cli.py)."""
    from citeline.auth.access import Access
    from citeline.auth.accounts import Accounts
    from citeline.auth.passwords import verify

    made = citeline(resources, "users", "create-admin", "Root@Example.com", "--password", "x" * 12)
    assert made.returncode == 0, made.stderr
    again = citeline(resources, "users", "create-admin", "root@example.com", "--password", "y" * 12)
    assert again.returncode == 2 and "already exists" in again.stderr
    short = citeline(resources, "users", "create-admin", "a@example.com", "--password", "short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    user = Accounts(resources.sessions, Access.system()).by_email("root@example.com")
    assert user is not None and user.is_admin and verify(user.password_hash, "x" * 12)
