"""What an MCP server registration may name: an allowlisted executable (stdio) or a public
http(s) URL (HTTP), and secrets that are plain strings."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping

from citeline.errors import InvalidInput
from citeline.outbound import check_url
from citeline.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# The search path a stdio server's bare command name is looked up on (not Citeline's PATH).
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
MAX_ARGS = 64
MAX_VALUE = 8192


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidInput(
            "name must be 1-40 letters, digits, '_' or '-', starting with a letter or digit",
            field="name",
        )
    return name


def check_stdio_command(command: str, settings: Settings) -> str:
    """The absolute path of `command` when it is on CITELINE_MCP_STDIO_COMMANDS."""
    if not command or any(char.isspace() for char in command) or "\0" in command:
        raise InvalidInput(
            "command is one executable, never a shell string: put its arguments in args",
            field="command",
        )
    allowed = [entry.strip() for entry in settings.mcp_stdio_commands if entry.strip()]
    if not allowed:
        raise InvalidInput(
            "no stdio MCP server may be registered: the operator lists allowed executables in "
            "CITELINE_MCP_STDIO_COMMANDS",
            field="command",
        )
    if os.path.isabs(command):
        path = os.path.normpath(command)
        listed = path in allowed or (
            os.path.basename(path) in allowed and _found(os.path.basename(path)) == path
        )
    else:
        found = _found(command) if command in allowed else None
        path, listed = found or command, found is not None
    if not listed:
        raise InvalidInput(
            f"command {command!r} is not on CITELINE_MCP_STDIO_COMMANDS ({', '.join(allowed)})",
            field="command",
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise InvalidInput(f"command {command!r} is not an executable file", field="command")
    return path


def _found(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def check_args(args: list[str]) -> list[str]:
    if len(args) > MAX_ARGS:
        raise InvalidInput(f"at most {MAX_ARGS} arguments", field="args")
    for arg in args:
        if "\0" in arg or len(arg) > MAX_VALUE:
            raise InvalidInput("an argument holds a NUL byte or is too long", field="args")
    return args


def check_http_url(url: str, settings: Settings) -> None:
    check_url(url, settings.outbound_allowed_hosts, field="url")


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not ENV_NAME.match(name):
            raise InvalidInput(f"{name!r} is not an environment variable name", field="env")
        if "\0" in value or len(value) > MAX_VALUE:
            raise InvalidInput(f"the value of {name} holds a NUL byte or is too long", field="env")
    return dict(env)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not HEADER_NAME.match(name):
            raise InvalidInput(f"{name!r} is not an HTTP header name", field="headers")
        if any(char in value for char in "\r\n\0") or len(value) > MAX_VALUE:
            raise InvalidInput(f"the value of header {name} is not allowed", field="headers")
    return dict(headers)


MAX_USER_KEYS = 32


def check_user_keys(
    names: list[str], shared: Mapping[str, str], *, field: str, header: bool
) -> list[str]:
    """Names of the keys each user sets for themselves: well formed, not repeated, and not
    also given a workspace value (a per-user key never falls back to the workspace's)."""
    if len(names) > MAX_USER_KEYS:
        raise InvalidInput(f"at most {MAX_USER_KEYS} per-user keys", field=field)
    pattern, what = (
        (HEADER_NAME, "an HTTP header name")
        if header
        else (ENV_NAME, "an environment variable name")
    )
    fold = str.lower if header else str
    seen: set[str] = set()
    for name in names:
        if not pattern.match(name):
            raise InvalidInput(f"{name!r} is not {what}", field=field)
        if fold(name) in seen:
            raise InvalidInput(f"{name!r} is listed twice", field=field)
        seen.add(fold(name))
    both = sorted(name for name in shared if fold(name) in seen)
    if both:
        source = "headers" if header else "env"
        raise InvalidInput(
            f"{', '.join(both)} cannot be both a workspace value (in {source}) and a per-user "
            f"key (in {field})",
            field=field,
        )
    return list(names)
