"""A streamable HTTP MCP server for the MCP client tests: `python -m tests.mcp.http_server PORT`.

Its tools: `echo` (read-only), `erase` (destructive: asks for approval), `hang` (never answers),
`die` (the process exits mid-call), `grow` (adds a tool and says the list changed), `flood`
(a result far over the size cap) and `count` (reports progress)."""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("citeline-test", log_level="WARNING")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
erased: list[str] = []


@server.tool(annotations=READ_ONLY)
def echo(text: str, times: int = 1) -> str:
    """Repeat the text."""
    return " ".join([text] * times)


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def erase(path: str) -> str:
    """Erase a file (pretend)."""
    erased.append(path)
    return f"erased {path} ({len(erased)} so far)"


@server.tool(annotations=READ_ONLY)
async def hang() -> str:
    """Never answers."""
    await anyio.sleep_forever()
    return "unreachable"


@server.tool(annotations=READ_ONLY)
def die() -> str:
    """The server dies while answering."""
    print("about to die on purpose", file=sys.stderr, flush=True)
    os._exit(3)


def extra(text: str) -> str:
    """A tool that appears after `grow`."""
    return f"extra: {text}"


@server.tool(annotations=READ_ONLY)
async def grow(ctx: Context) -> str:
    """Add the tool `extra` and announce that the tool list changed."""
    server.add_tool(extra, annotations=READ_ONLY)
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool(annotations=READ_ONLY)
def flood(size: int) -> str:
    """Return `size` characters."""
    return "x" * size


@server.tool(annotations=READ_ONLY)
async def count(steps: int, ctx: Context) -> str:
    """Count with progress notifications."""
    for step in range(steps):
        await ctx.report_progress(step + 1, steps, f"step {step + 1}")
        await anyio.sleep(0.05)
    return f"counted {steps}"


if __name__ == "__main__":
    server.run(
        transport="streamable-http",
        host="127.0.0.1",
        port=int(sys.argv[1]),
    )
