"""A streamable HTTP MCP server that tells each caller which credentials reached it:
`python -m tests.mcp.auth_echo_server PORT`. Its one tool, `whoami`, answers with the
`Authorization` and `X-Tenant` headers of the request that carried the call."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("citeline-auth-echo", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def whoami(ctx: Context) -> str:
    """Say which credentials this call came with."""
    headers = ctx.headers or {}
    return (
        f"authorization={headers.get('authorization', '-')} tenant={headers.get('x-tenant', '-')}"
    )


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
