"""Each user's own credentials for an MCP server whose registration declares per-user keys
(`user_env` for a stdio server, `user_headers` for an HTTP one).

A user's values are sealed like the workspace's (`citeline.mcp.secrets`), stored one row per
(server, user), and only their names ever come back. A connection to such a server is opened
with the calling user's values and belongs to that user's toolbox (`McpToolbox` serves one
`Access`), so it never serves anyone else; a caller without values gets `CredentialsNeeded`,
never another user's values nor the workspace's for those keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access
from citeline.mcp.adapter import McpFailure
from citeline.mcp.models import McpServer, McpUserCredentials
from citeline.mcp.secrets import SecretBox


class CredentialsNeeded(McpFailure):
    """The caller must set their own credentials for the server before using it."""

    def __init__(self, message: str) -> None:
        super().__init__("refused", message)


@dataclass(frozen=True)
class CredentialStatus:
    """Which of a server's per-user keys the caller has set; never their values."""

    server: McpServer
    env_names: list[str]
    header_names: list[str]
    missing_env: list[str]
    missing_headers: list[str]
    updated_at: datetime | None


def status(server: McpServer, row: McpUserCredentials | None) -> CredentialStatus:
    env = sorted(row.env_names) if row else []
    headers = sorted(row.header_names) if row else []
    return CredentialStatus(
        server,
        env,
        headers,
        [name for name in server.user_env_names if name not in env],
        [name for name in server.user_header_names if name not in headers],
        row.updated_at if row else None,
    )


def _hint(server: McpServer) -> str:
    keys = [*server.user_env_names, *server.user_header_names]
    return (
        f"set them on the MCP servers page or with `citeline mcp credentials set {server.name}` "
        f"({', '.join(keys)}), then ask again"
    )


def resolve(
    sessions: sessionmaker[Session], box: SecretBox, server: McpServer, access: Access
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment and headers a connection to `server` on behalf of `access` carries:
    the workspace's values, and for the per-user keys only the caller's own."""
    shared = box.open(server.secrets)
    env = {k: v for k, v in shared.get("env", {}).items() if k not in server.user_env_names}
    headers = _without(shared.get("headers", {}), server.user_header_names)
    if not server.per_user:
        return env, headers
    if access.user_id is None:
        who = "an API key" if access.api_key_id is not None else "the system"
        raise CredentialsNeeded(
            f"MCP server {server.name!r} uses each person's own credentials, and {who} has "
            "none: call its tools as a signed-in user"
        )
    with sessions() as session:
        row = session.get(McpUserCredentials, (server.id, access.user_id))
        sealed = row.secrets if row is not None else None
    mine = (
        box.open(sealed, remedy=f"set your credentials for {server.name!r} again")
        if sealed is not None
        else {}
    )
    own_env = {k: v for k, v in mine.get("env", {}).items() if k in server.user_env_names}
    own_headers = {
        k: v for k, v in mine.get("headers", {}).items() if k in server.user_header_names
    }
    missing = [k for k in server.user_env_names if k not in own_env] + [
        k for k in server.user_header_names if k not in own_headers
    ]
    if missing:
        raise CredentialsNeeded(
            f"MCP server {server.name!r} needs your own credentials ({', '.join(missing)} "
            f"not set): {_hint(server)}"
        )
    return env | own_env, headers | own_headers


def _without(values: Mapping[str, str], names: list[str]) -> dict[str, str]:
    """`values` without the headers `names` names (header names ignore case)."""
    lowered = {name.lower() for name in names}
    return {k: v for k, v in values.items() if k.lower() not in lowered}
