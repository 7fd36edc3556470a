"""An MCP server that tells each caller which credentials reached it. Over streamable HTTP
(`python -m tests.mcp.auth_echo_server PORT`) its one tool, `whoami`, answers with the
`Authorization` and `X-Tenant` headers of the request that carried the call; over stdio
(`python tests/mcp/auth_echo_server.py`) with the `API_TOKEN` and `TEAM` variables it was
started with."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("citeline-auth-echo", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
def whoami(ctx: Context) -> str:
    """Say which credentials this call came with."""
    headers = ctx.headers
    if headers is None:  # stdio: what the server was started with
        return f"api_token={os.environ.get('API_TOKEN', '-')} team={os.environ.get('TEAM', '-')}"
    return (
        f"authorization={headers.get('authorization', '-')} tenant={headers.get('x-tenant', '-')}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        server.run()
