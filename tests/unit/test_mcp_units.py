"""The pure parts of the MCP client: tool names a model can call, default policies that fail
closed, secrets sealed at rest, and the sandbox's resource limits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from citeline.auth import Role
from citeline.errors import ConfigurationError, InvalidInput
from citeline.mcp.adapter import SANDBOX, ToolInfo
from citeline.mcp.policy import Policy, decide
from citeline.mcp.secrets import SecretBox
from citeline.mcp.toolbox import argument_digest, qualified_name
from citeline.mcp.validation import check_stdio_command
from citeline.settings import Settings


def tool(**hints: bool | None) -> ToolInfo:
    return ToolInfo("t", "", {"type": "object"}, **hints)


def test_qualified_names_are_model_safe_and_distinct() -> None:
    assert qualified_name("time", "get_current_time") == "time__get_current_time"
    assert qualified_name("everything", "get-env") == "everything__get-env"
    odd = qualified_name("lab", "read file.v2")
    assert len(odd) <= 64 and all(c.isalnum() or c in "_-" for c in odd)
    assert odd != qualified_name("lab", "read_file_v2")
    long = qualified_name("x" * 40, "y" * 80)
    assert len(long) == 64 and long != qualified_name("x" * 40, "y" * 79 + "z")


def test_default_policies_come_from_annotations_and_fail_closed() -> None:
    assert decide(tool(read_only=True), Role.viewer, {}) is Policy.allow
    assert decide(tool(read_only=False, destructive=True), Role.owner, {}) is Policy.ask
    assert (
        decide(tool(read_only=False, destructive=False, open_world=True), Role.member, {})
        is Policy.ask
    )
    assert decide(tool(), Role.admin, {}) is Policy.ask  # unannotated
    assert decide(tool(), Role.viewer, {}) is Policy.deny
    assert decide(tool(read_only=True), Role.member, {("t", "member"): "deny"}) is Policy.deny
    assert decide(tool(), Role.viewer, {("t", "viewer"): "allow"}) is Policy.allow
    assert decide(tool(read_only=True), Role.member, {("t", "member"): "sometimes"}) is Policy.deny


def test_secrets_are_sealed_and_a_changed_key_is_named() -> None:
    box = SecretBox("instance secret")
    sealed = box.seal({"env": {"TOKEN": "abc123"}, "headers": {}})
    assert "abc123" not in sealed and "TOKEN" not in sealed
    assert box.open(sealed) == {"env": {"TOKEN": "abc123"}, "headers": {}}
    with pytest.raises(ConfigurationError, match=r"CITELINE_SECRET_KEY.*register the server"):
        SecretBox("another secret").open(sealed)
    with pytest.raises(ConfigurationError, match="or set your credentials again"):
        SecretBox("another secret").open(sealed, remedy="set your credentials again")


def test_argument_digests_ignore_key_order() -> None:
    assert argument_digest({"a": 1, "b": [2]}) == argument_digest({"b": [2], "a": 1})
    assert argument_digest({"a": 1}) != argument_digest({"a": 2})


def test_stdio_commands_must_be_allowlisted_executables() -> None:
    settings = Settings(mcp_stdio_commands=["/bin/sh", "env"])
    assert check_stdio_command("/bin/sh", settings) == "/bin/sh"
    assert check_stdio_command("env", settings).endswith("/env")
    for command, reason in [
        ("/bin/bash", "not on CITELINE_MCP_STDIO_COMMANDS"),
        ("sh -c id", "never a shell string"),
        ("bash", "not on"),
    ]:
        with pytest.raises(InvalidInput, match=reason):
            check_stdio_command(command, settings)
    with pytest.raises(InvalidInput, match="CITELINE_MCP_STDIO_COMMANDS"):
        check_stdio_command("/bin/sh", Settings())


def test_the_sandbox_limits_cpu_and_memory_and_then_runs_the_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-I", "-S", str(SANDBOX), "7", "256", "--", "/bin/sh", "-c",
         "ulimit -t; ulimit -d; ulimit -c"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    assert shown == ["7", str(256 * 1024), "0"]
    hog = subprocess.run(
        [sys.executable, "-I", "-S", str(SANDBOX), "1", "256", "--", sys.executable, "-c",
         "while True: pass"],
        check=False, capture_output=True, timeout=60,
    )  # fmt: skip
    assert hog.returncode < 0  # killed by SIGXCPU (or SIGKILL at the hard limit)
