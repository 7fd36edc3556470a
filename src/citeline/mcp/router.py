"""The MCP servers API: register, list, read, remove; a server's tools and tool policies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from citeline.api.deps import AccessDep, McpServersDep
from citeline.auth import Role
from citeline.mcp.credentials import CredentialStatus
from citeline.mcp.models import McpServer
from citeline.mcp.schemas import (
    CredentialsIn,
    CredentialsOut,
    McpServerIn,
    McpServerList,
    McpServerOut,
    McpToolList,
    McpToolOut,
    PoliciesIn,
    PoliciesOut,
    PolicyIn,
)
from citeline.mcp.service import effective, qualified_name

router = APIRouter(prefix="/v1/mcp-servers", tags=["mcp"])


def _out(server: McpServer) -> McpServerOut:
    return McpServerOut(
        id=server.id,
        name=server.name,
        transport=server.transport,
        command=server.command,
        args=server.args,
        url=server.url,
        env_names=server.env_names,
        header_names=server.header_names,
        user_env_names=server.user_env_names,
        user_header_names=server.user_header_names,
        created_by=server.created_by,
        created_at=server.created_at,
    )


def _policies(server_id: uuid.UUID, rows: list[tuple[str, str, str]]) -> PoliciesOut:
    return PoliciesOut(
        server_id=server_id,
        policies=[PolicyIn.model_validate({"tool": t, "role": r, "policy": p}) for t, r, p in rows],
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def register_server(body: McpServerIn, servers: McpServersDep) -> McpServerOut:
    """Register an MCP server in the caller's workspace. HTTP servers need a workspace admin;
    stdio servers an instance administrator and an executable on CITELINE_MCP_STDIO_COMMANDS.
    `env` and `headers` are stored encrypted and never returned; `user_env`/`user_headers`
    name the keys each user sets for themselves (PUT /v1/mcp-servers/{id}/credentials)."""
    return _out(
        servers.register(
            body.name,
            body.transport,
            command=body.command,
            args=body.args,
            env=body.env,
            url=body.url,
            headers=body.headers,
            user_env=body.user_env,
            user_headers=body.user_headers,
        )
    )


@router.get("")
def list_servers(servers: McpServersDep) -> McpServerList:
    return McpServerList(servers=[_out(server) for server in servers.all()])


@router.get("/{server}")
def get_server(server: str, servers: McpServersDep) -> McpServerOut:
    """One server, by id or name."""
    return _out(servers.get(server))


@router.delete("/{server}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(server: str, servers: McpServersDep) -> Response:
    servers.delete(server)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{server}/tools", responses={502: {"description": "the server failed"}})
def server_tools(
    server: str,
    servers: McpServersDep,
    access: AccessDep,
    refresh: Annotated[bool, Query(description="Ask the server again")] = False,
) -> McpToolList:
    """The server's tools with each role's policy (from annotations, then overrides)."""
    row, infos, overrides = servers.tools(server, refresh=refresh)
    tools = []
    for info in infos:
        by_role = effective(info, overrides)
        tools.append(
            McpToolOut(
                name=qualified_name(row.name, info.name),
                tool=info.name,
                description=info.description,
                input_schema=info.input_schema,
                read_only=info.read_only,
                destructive=info.destructive,
                open_world=info.open_world,
                policies={role: policy.value for role, policy in by_role.items()},
                policy=by_role[Role(access.role).value].value,
            )
        )
    return McpToolList(server_id=row.id, tools=tools)


@router.get("/{server}/policies")
def get_policies(server: str, servers: McpServersDep) -> PoliciesOut:
    row = servers.get(server)
    return _policies(row.id, servers.policies(row.id))


@router.put("/{server}/policies")
def put_policies(server: str, body: PoliciesIn, servers: McpServersDep) -> PoliciesOut:
    """Replace the server's per-role tool policies (admins); [] restores the defaults."""
    row = servers.get(server)
    rows = servers.set_policies(row.id, [(p.tool, p.role, p.policy) for p in body.policies])
    return _policies(row.id, rows)


def _credentials(found: CredentialStatus) -> CredentialsOut:
    return CredentialsOut(
        server_id=found.server.id,
        env_names=found.env_names,
        header_names=found.header_names,
        missing_env=found.missing_env,
        missing_headers=found.missing_headers,
        complete=not (found.missing_env or found.missing_headers),
        updated_at=found.updated_at,
    )


@router.get("/{server}/credentials")
def get_credentials(server: str, servers: McpServersDep) -> CredentialsOut:
    """Which of the server's per-user keys you have set; values are never returned."""
    return _credentials(servers.credentials(server))


@router.put("/{server}/credentials")
def put_credentials(server: str, body: CredentialsIn, servers: McpServersDep) -> CredentialsOut:
    """Set your own values for the server's per-user keys (replacing any you set before);
    they are stored encrypted and used only for your calls."""
    return _credentials(servers.set_credentials(server, body.env, body.headers))


@router.delete("/{server}/credentials", status_code=status.HTTP_204_NO_CONTENT)
def delete_credentials(server: str, servers: McpServersDep) -> Response:
    """Forget your own values for the server's per-user keys."""
    servers.clear_credentials(server)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
