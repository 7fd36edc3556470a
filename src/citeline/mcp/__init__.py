"""MCP servers a workspace registers, and the tools they offer to the assistant: discovery,
per-role policies, safe calls with timeouts, rate limits and an audit trail."""

from citeline.mcp.auditing import AuditWriter
from citeline.mcp.service import McpServers
from citeline.mcp.toolbox import (
    ApprovingToolbox,
    McpCallResult,
    McpTool,
    McpToolbox,
    argument_digest,
)

__all__ = [
    "ApprovingToolbox",
    "AuditWriter",
    "McpCallResult",
    "McpServers",
    "McpTool",
    "McpToolbox",
    "argument_digest",
]
