"""Citeline as an MCP server: its tools at `/mcp` over streamable HTTP, for the same callers
as the REST API.

Stateless: each POST carries its own credential, is served by whichever replica receives it
and keeps nothing in the process between requests, so replicas behind a load balancer need no
sticky sessions. A tool's progress notifications go out on the SSE response of the POST that
called it. What stateless mode gives up is server-to-client requests (sampling, elicitation)
and resuming a cut stream, which none of these tools use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from citeline import __version__
from citeline.auth import Access, Role
from citeline.mcp_server.guard import CallGuard
from citeline.mcp_server.tools import Tools
from citeline.resources import Resources

PATH = "/mcp"

INSTRUCTIONS = (
    "Citeline holds a workspace's documents in knowledge bases. Call list_knowledge_bases "
    "first; then search for passages (each with its document and character offsets) or ask "
    "for an answer in which every sentence cites the passage it comes from. Quote Citeline's "
    "citations as they are: they point at the exact text of a stored document."
)

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
# Writes a conversation turn and uses a model, but changes nothing a user has stored.
ASKS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
STARTS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)

# Tools a role below this one cannot use, hidden from its tool list (a call is still refused).
NEEDS_ROLE = {"start_report": Role.member}

Identify = Callable[[Request], Awaitable[Access]]


def build_server(resources: Resources, guard: CallGuard | None = None) -> MCPServer[Any]:
    tools = Tools(resources)
    server: MCPServer[Any] = MCPServer(
        "citeline",
        title="Citeline",
        version=__version__,
        instructions=INSTRUCTIONS,
        middleware=[hide_by_role, guard or CallGuard(resources)],
    )
    server.add_tool(tools.list_knowledge_bases, title="List knowledge bases", annotations=READ_ONLY)
    server.add_tool(tools.list_documents, title="List documents", annotations=READ_ONLY)
    server.add_tool(tools.search, title="Search passages", annotations=READ_ONLY)
    server.add_tool(tools.ask, title="Ask with citations", annotations=ASKS)
    server.add_tool(tools.start_report, title="Start a cited report", annotations=STARTS)
    return server


async def hide_by_role(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """A caller's tool list names only the tools its role may use."""
    result = await call_next(ctx)
    access = getattr(getattr(ctx.request, "state", None), "access", None)
    # By now the result is the wire form: {"tools": [{"name": ...}, ...], ...}.
    if ctx.method != "tools/list" or not isinstance(result, dict) or not isinstance(access, Access):
        return result
    tools = [t for t in result["tools"] if access.role >= NEEDS_ROLE.get(t["name"], Role.viewer)]
    return {**result, "tools": tools}


class McpEndpoint:
    """The ASGI endpoint at `/mcp`: the caller is identified as for any REST route (a
    refusal is the API's problem-details response), then MCP serves the request."""

    def __init__(self, resources: Resources, identify: Identify) -> None:
        self.identify = identify
        self.guard = CallGuard(resources)
        self.server = build_server(resources, self.guard)
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            # SSE responses, so that a long tool call can send progress before its result.
            json_response=False,
            # The app's SameOrigin middleware refuses cross-site requests and local mode
            # answers only loopback host names; the SDK's own check would pin allowed hosts.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager = self.server.session_manager

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The session manager's task group, for the app's lifespan; at its end the audit
        rows of the last calls are written."""
        try:
            async with self.manager.run():
                yield
        finally:
            await anyio.to_thread.run_sync(self.guard.close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Leaves the Access in the request state, where the tools find it.
        await self.identify(Request(scope, receive))
        await self.manager.handle_request(scope, receive, send)


def install(app: FastAPI, resources: Resources, identify: Identify) -> McpEndpoint:
    """Serve the MCP endpoint in `app`; enter its `running()` in the app's lifespan."""
    endpoint = McpEndpoint(resources, identify)
    # A Route, not a Mount: a Mount answers `/mcp` with a redirect to `/mcp/`.
    app.router.routes.append(Route(PATH, endpoint, include_in_schema=False))
    return endpoint
