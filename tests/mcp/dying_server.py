"""A stdio MCP server whose one tool kills it mid-call, after a word on stderr."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("dying", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def die() -> str:
    """Dies."""
    print("about to die on purpose", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    server.run()
