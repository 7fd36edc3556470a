"""Whether a role may call a tool: allow, ask (a person approves each call) or deny.

`decide` is the one place the answer is made. It fails closed: a policy it cannot read, a role
it does not know or anything unexpected is a deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from citeline.auth import Role
from citeline.mcp.adapter import ToolInfo


class Policy(StrEnum):
    allow = "allow"
    ask = "ask"
    deny = "deny"


def default(tool: ToolInfo, role: Role) -> Policy:
    """From the tool's MCP annotations: read-only tools are allowed; anything else (destructive,
    open-world or unannotated) asks, and is denied to viewers, who change nothing."""
    if tool.read_only is True:
        return Policy.allow
    return Policy.deny if role < Role.member else Policy.ask


def decide(tool: ToolInfo, role: Role, overrides: Mapping[tuple[str, str], str]) -> Policy:
    """The policy for `role` on `tool`: an admin's override for that tool and role, else the
    default. `overrides` maps (tool name, role) to a policy."""
    try:
        chosen = overrides.get((tool.name, role.value))
        return Policy(chosen) if chosen is not None else default(tool, role)
    except (ValueError, TypeError, AttributeError):
        return Policy.deny
