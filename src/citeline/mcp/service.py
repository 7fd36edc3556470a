"""Registering, listing and removing a workspace's MCP servers, their tools and policies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, Role, audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, Forbidden, InvalidInput, NotFound, UpstreamError
from citeline.mcp.adapter import McpFailure, ToolInfo
from citeline.mcp.credentials import CredentialsNeeded, CredentialStatus, status
from citeline.mcp.models import McpServer, McpToolPolicy, McpUserCredentials
from citeline.mcp.policy import Policy, decide
from citeline.mcp.secrets import SecretBox
from citeline.mcp.toolbox import (
    McpToolbox,
    overrides_for,
    policies_changed,
    qualified_name,
    user_tools_key,
)
from citeline.mcp.validation import (
    check_args,
    check_env,
    check_headers,
    check_http_url,
    check_name,
    check_stdio_command,
    check_user_keys,
)
from citeline.settings import Settings

MAX_SERVERS = 100

log = logging.getLogger(__name__)


class McpServers:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        settings: Settings,
        access: Access,
        box: SecretBox,
        toolbox: Callable[[], McpToolbox],
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.settings = settings
        self.access = access
        self.box = box
        self._toolbox = toolbox

    def register(
        self,
        name: str,
        transport: str,
        *,
        command: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        user_env: list[str] | None = None,
        user_headers: list[str] | None = None,
    ) -> McpServer:
        """Workspace admins add HTTP servers; only instance administrators add stdio ones.
        `user_env`/`user_headers` name the keys each user sets for themselves."""
        self.access.require(Role.admin, "register MCP servers")
        check_name(name)
        env, headers, args = env or {}, headers or {}, args or []
        user_env, user_headers = user_env or [], user_headers or []
        if transport == "stdio":
            self.access.require_instance_admin("register a stdio MCP server (a command it runs)")
            if url is not None or headers or user_headers:
                raise InvalidInput(
                    "a stdio server takes command, args, env and user_env, not url, headers or "
                    "user_headers",
                    field="url",
                )
            if command is None:
                raise InvalidInput("a stdio server needs a command", field="command")
            check_stdio_command(command, self.settings)
            check_args(args)
            check_env(env)
            check_user_keys(user_env, env, field="user_env", header=False)
        elif transport == "http":
            if command is not None or args or env or user_env:
                raise InvalidInput(
                    "an http server takes url, headers and user_headers, not command, args, "
                    "env or user_env",
                    field="user_env" if user_env and not (command or args or env) else "command",
                )
            if url is None:
                raise InvalidInput("an http server needs a url", field="url")
            check_http_url(url, self.settings)
            check_headers(headers)
            check_user_keys(user_headers, headers, field="user_headers", header=True)
        else:
            raise InvalidInput("transport must be 'stdio' or 'http'", field="transport")
        server = McpServer(
            id=uuid.uuid4(),
            workspace_id=self.access.owned_workspace(),
            name=name,
            transport=transport,
            command=command,
            args=args,
            url=url,
            secrets=self.box.seal({"env": env, "headers": headers}),
            env_names=sorted(env),
            header_names=sorted(headers),
            user_env_names=list(user_env),
            user_header_names=list(user_headers),
            created_by=self.access.subject,
        )
        try:
            with unit_of_work(self.sessions) as session:
                count = len(
                    session.scalars(
                        select(McpServer.id).where(McpServer.workspace_id == server.workspace_id)
                    ).all()
                )
                if count >= MAX_SERVERS:
                    raise Conflict(f"a workspace may have at most {MAX_SERVERS} MCP servers")
                session.add(server)
                audit.add(
                    session,
                    audit.by(
                        self.access,
                        "mcp_server.create",
                        str(server.id),
                        name=name,
                        transport=transport,
                        user_keys=[*user_env, *user_headers],
                    ),
                )
                session.flush()
                session.expunge(server)
        except IntegrityError:
            raise Conflict(f"an MCP server named {name!r} already exists here") from None
        return server

    def all(self) -> list[McpServer]:
        statement = select(McpServer).order_by(McpServer.name)
        if not self.access.is_system:
            statement = statement.where(McpServer.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            servers = list(session.scalars(statement))
            session.expunge_all()
            return servers

    def get(self, ref: uuid.UUID | str) -> McpServer:
        """By id or name, within the caller's workspace (another's is not found)."""
        with self.sessions() as session:
            server = None
            try:
                server = session.get(McpServer, uuid.UUID(str(ref)))
            except ValueError:
                statement = select(McpServer).where(
                    McpServer.name == str(ref),
                    McpServer.workspace_id == self.access.owned_workspace(),
                )
                server = session.scalars(statement).first()
            if server is None or not self.access.sees(server.workspace_id):
                raise NotFound(f"MCP server {ref} not found")
            session.expunge(server)
            return server

    def delete(self, ref: uuid.UUID | str) -> None:
        server = self.get(ref)
        self.access.require(Role.admin, "remove MCP servers")
        with unit_of_work(self.sessions) as session:
            session.execute(delete(McpServer).where(McpServer.id == server.id))
            audit.add(
                session,
                audit.by(self.access, "mcp_server.delete", str(server.id), name=server.name),
            )
        policies_changed(self.redis, server.id)

    def tools(
        self, ref: uuid.UUID | str, *, refresh: bool = False
    ) -> tuple[McpServer, list[ToolInfo], dict[tuple[str, str], str]]:
        """The server's tools (from the cache unless `refresh`) with the admins' overrides."""
        server = self.get(ref)
        with self._toolbox() as toolbox:
            try:
                infos = toolbox.server_tools(server, refresh=refresh)
            except CredentialsNeeded as needed:
                raise Conflict(needed.message) from needed
            except McpFailure as failure:
                raise UpstreamError(failure.message) from failure
        return server, infos, overrides_for(self.sessions, [server.id]).get(server.id, {})

    def set_policies(
        self, ref: uuid.UUID | str, policies: list[tuple[str, str, str]]
    ) -> list[tuple[str, str, str]]:
        """Replace the server's overrides with `policies`, (tool, role, policy) each."""
        server = self.get(ref)
        self.access.require(Role.admin, "set MCP tool policies")
        rows = {}
        for tool, role, policy in policies:
            Role(role), Policy(policy)
            rows[(tool, role)] = policy
        with unit_of_work(self.sessions) as session:
            session.execute(delete(McpToolPolicy).where(McpToolPolicy.server_id == server.id))
            for (tool, role), policy in rows.items():
                session.add(
                    McpToolPolicy(
                        server_id=server.id,
                        tool_name=tool,
                        role=role,
                        policy=policy,
                        set_by=self.access.subject,
                    )
                )
            audit.add(
                session,
                audit.by(self.access, "mcp_server.policies", str(server.id), count=len(rows)),
            )
        policies_changed(self.redis, server.id)
        return [(tool, role, policy) for (tool, role), policy in sorted(rows.items())]

    def policies(self, ref: uuid.UUID | str) -> list[tuple[str, str, str]]:
        server = self.get(ref)
        found = overrides_for(self.sessions, [server.id]).get(server.id, {})
        return [(tool, role, policy) for (tool, role), policy in sorted(found.items())]

    # The caller's own credentials for a server with per-user keys.

    def credentials(self, ref: uuid.UUID | str) -> CredentialStatus:
        """Which of the server's per-user keys the caller has set (names, never values)."""
        server = self.get(ref)
        user_id = self._own_user("read their MCP credentials")
        with self.sessions() as session:
            row = session.get(McpUserCredentials, (server.id, user_id))
            if row is not None:
                session.expunge(row)
        return status(server, row)

    def set_credentials(
        self, ref: uuid.UUID | str, env: dict[str, str], headers: dict[str, str]
    ) -> CredentialStatus:
        """Replace the caller's own values for the server's per-user keys."""
        server = self.get(ref)
        user_id = self._own_user("set MCP credentials")
        if not server.per_user:
            raise InvalidInput(
                f"MCP server {server.name!r} declares no per-user keys: its secrets belong to "
                "the workspace and are set by an admin when it is registered",
                field="env" if server.transport == "stdio" else "headers",
            )
        env = _declared(check_env(env), server.user_env_names, "env", "variable", fold=False)
        headers = _declared(
            check_headers(headers), server.user_header_names, "headers", "header", fold=True
        )
        if not env and not headers:
            raise InvalidInput(
                "give a value for at least one per-user key "
                f"({', '.join([*server.user_env_names, *server.user_header_names])}); "
                "DELETE clears them",
                field="env" if server.transport == "stdio" else "headers",
            )
        row = McpUserCredentials(
            server_id=server.id,
            user_id=user_id,
            secrets=self.box.seal({"env": env, "headers": headers}),
            env_names=sorted(env),
            header_names=sorted(headers),
            updated_at=utcnow(),
        )
        with unit_of_work(self.sessions) as session:
            session.merge(row)
            audit.add(
                session,
                audit.by(
                    self.access,
                    "mcp_credentials.set",
                    str(server.id),
                    server=server.name,
                    keys=[*sorted(env), *sorted(headers)],
                ),
            )
        self._forget_own_tools(server)
        return status(server, row)

    def _forget_own_tools(self, server: McpServer) -> None:
        """Other credentials may show the caller other tools: list them anew."""
        try:
            self.redis.delete(user_tools_key(server.id, self.access.subject))
        except redis.RedisError as exc:
            log.warning("mcp tool cache not cleared", extra={"error": str(exc)})

    def clear_credentials(self, ref: uuid.UUID | str) -> None:
        """Forget the caller's own values for the server (nothing happens if none)."""
        server = self.get(ref)
        user_id = self._own_user("clear MCP credentials")
        with unit_of_work(self.sessions) as session:
            cleared = session.scalars(
                delete(McpUserCredentials)
                .where(
                    McpUserCredentials.server_id == server.id,
                    McpUserCredentials.user_id == user_id,
                )
                .returning(McpUserCredentials.server_id)
            ).first()
            audit.add(
                session,
                audit.by(
                    self.access,
                    "mcp_credentials.clear",
                    str(server.id),
                    server=server.name,
                    cleared=cleared is not None,
                ),
            )
        self._forget_own_tools(server)

    def _own_user(self, action: str) -> uuid.UUID:
        if self.access.user_id is None:
            raise Forbidden(
                f"only a signed-in user may {action}: credentials belong to a person, "
                "not to an API key or the system"
            )
        return self.access.user_id


def _declared(
    values: dict[str, str], names: list[str], field: str, what: str, *, fold: bool
) -> dict[str, str]:
    """`values` keyed by the declared spelling of each name; refuses undeclared ones."""
    spelled = {(name.lower() if fold else name): name for name in names}
    found: dict[str, str] = {}
    for key, value in values.items():
        name = spelled.get(key.lower() if fold else key)
        if name is None:
            declared = ", ".join(names) or "none"
            raise InvalidInput(
                f"{key!r} is not one of this server's per-user {what}s ({declared})", field=field
            )
        if not value.strip():
            raise InvalidInput(f"the value of {key} is empty; DELETE clears yours", field=field)
        found[name] = value
    return found


def effective(info: ToolInfo, overrides: dict[tuple[str, str], str]) -> dict[str, Policy]:
    return {role.value: decide(info, role, overrides) for role in Role}


__all__ = ["McpServers", "effective", "qualified_name"]
