"""Citeline served as an MCP server at `/mcp`: its knowledge bases, search, cited answers and
reports as tools, for the same callers (tokens, API keys) as the REST API."""

from citeline.mcp_server.server import McpEndpoint, build_server, install

__all__ = ["McpEndpoint", "build_server", "install"]
