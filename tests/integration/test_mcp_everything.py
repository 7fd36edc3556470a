"""The reference MCP server `@modelcontextprotocol/server-everything` (npm) over stdio: what it
can see of the environment, and a long-running operation's progress and timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from citeline.auth import Access, Role
from citeline.mcp import McpToolbox
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import fast_settings
from tests.mcp.support import EVERYTHING, NODE, needs_everything, stdio_commands

pytestmark = needs_everything
ROOT = Access("system", "default", Role.owner, instance_admin=True)
MEMBER = Access("user:member", "default", Role.member)
LEAK = "citeline-own-secret-7f3a"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        redis_url,
        mcp_stdio_commands=stdio_commands(),
        mcp_call_timeout_seconds=3.0,
    )


@pytest.fixture
def everything(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[McpToolbox]:
    # Secrets in Citeline's own environment, which no MCP server may see.
    monkeypatch.setenv("CITELINE_TEST_LEAK", LEAK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LEAK)
    assert NODE is not None
    resources.mcp_servers(ROOT).register(
        "everything",
        "stdio",
        command=NODE,
        args=[str(EVERYTHING), "stdio"],
        env={"DECLARED_TOKEN": "for-this-server-only"},
    )
    toolbox = resources.mcp_toolbox(MEMBER)
    yield toolbox
    toolbox.close()


def test_a_stdio_server_sees_its_declared_secrets_and_nothing_of_citelines(
    everything: McpToolbox,
) -> None:
    names = {tool.name for tool in everything.tools()}
    assert "everything__get-env" in names and "everything__echo" in names
    result = everything.call("everything__get-env", {})
    assert not result.is_error, result.text
    env = json.loads(result.text)
    assert env["DECLARED_TOKEN"] == "for-this-server-only"
    assert LEAK not in result.text
    assert not [name for name in env if name.startswith("CITELINE_")]
    # Only the SDK's minimal variables, the declared one, and the locale the sandbox's Python
    # sets when it coerces a C locale (PEP 538).
    minimal = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LC_CTYPE"}
    assert set(env) <= {*minimal, "DECLARED_TOKEN"}


def test_a_long_operation_reports_progress_and_one_too_long_times_out(
    everything: McpToolbox,
) -> None:
    heard: list[tuple[float, float | None]] = []
    done = everything.call(
        "everything__trigger-long-running-operation",
        {"duration": 1, "steps": 4},
        progress=lambda step, total, message: heard.append((step, total)),
    )
    assert not done.is_error and "Long running operation completed" in done.text, done.text
    assert heard and heard[-1][1] == 4

    slow = everything.call(
        "everything__trigger-long-running-operation", {"duration": 20, "steps": 4}
    )
    assert slow.is_error and "did not answer" in slow.text and "within 3 s" in slow.text
    assert 2900 < slow.duration_ms < 12000
    # The server was restarted for the next call.
    again = everything.call("everything__echo", {"message": "back"})
    assert not again.is_error and "back" in again.text
