"""The machine commands of `citeline` (run on the server's machine, on its data) against the
real engines; the user commands, which talk to a server, are in tests/e2e/test_cli.py."""

from __future__ import annotations

import json
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


def test_users_admin_keys_and_workspaces(resources: Resources) -> None:
    from citeline.auth.access import Access
    from citeline.auth.accounts import Accounts
    from citeline.auth.api_keys import access_for_key
    from citeline.auth.passwords import verify
    from citeline.errors import Unauthorized

    made = citeline(resources, "users", "create-admin", "Root@Example.com", "--password", "x" * 12)
    assert made.returncode == 0, made.stderr
    again = citeline(resources, "users", "create-admin", "root@example.com", "--password", "y" * 12)
    assert again.returncode == 2 and "already exists" in again.stderr
    short = citeline(resources, "users", "create", "a@example.com", "--password", "short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    ownerless = citeline(resources, "workspaces", "create", "Team Two")
    assert ownerless.returncode == 2 and "--owner" in ownerless.stderr
    nobody = citeline(resources, "workspaces", "create", "Team Two", "--owner", "x@example.com")
    assert nobody.returncode == 2 and "no user with the email x@example.com" in nobody.stderr
    owned = citeline(resources, "workspaces", "create", "Team Two", "--owner", "root@example.com")
    assert owned.returncode == 0, owned.stderr
    viewer = citeline(
        resources, "users", "create", "v@example.com", "--password", "z" * 12,
        "--role", "viewer", "--workspace", "team-two",
    )  # fmt: skip
    assert viewer.returncode == 0, viewer.stderr
    listed = json.loads(citeline(resources, "users", "list", "--json").stdout)
    assert {(u["email"], u["role"], u["admin"]) for u in listed} == {
        ("root@example.com", "owner", True),
        ("v@example.com", "viewer", False),
    }
    last_owner = citeline(resources, "users", "delete", "root@example.com")
    assert last_owner.returncode == 2 and "last owner of workspace" in last_owner.stderr
    key = citeline(
        resources, "users", "create-key", "ci", "--role", "viewer", "--workspace", "team-two"
    )
    secret = key.stdout.strip().splitlines()[-1]
    access = access_for_key(resources.sessions, secret)
    assert (access.workspace_id, access.role) == ("team-two", "viewer")
    key_id = key.stdout.split()[2]
    assert citeline(resources, "users", "revoke-key", key_id).returncode == 0
    with pytest.raises(Unauthorized, match="revoked"):
        access_for_key(resources.sessions, secret)
    assert citeline(resources, "users", "disable", "v@example.com").returncode == 0
    user = Accounts(resources.sessions, Access.system()).by_email("root@example.com")
    assert user is not None and verify(user.password_hash, "x" * 12)
