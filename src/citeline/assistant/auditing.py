"""The audit rows of decisions on tool calls that wait for a person's approval: who let which
call run or stopped it, and the calls nobody decided on in time. (The calls themselves are
audited by the MCP client as `mcp.tool_call`.)"""

from __future__ import annotations

from typing import Any

from citeline.assistant.models import AssistantRun, AssistantToolCall
from citeline.auth import audit
from citeline.mcp import argument_digest


def decision_entry(
    actor: str,
    run: AssistantRun,
    call: AssistantToolCall | Any,
    *,
    approve: bool,
    reason: str | None = None,
) -> audit.Entry:
    """`actor` decided on `call` of `run` ("system" when its approval timed out)."""
    detail: dict[str, Any] = {
        "run_id": str(run.id),
        "tool_call_id": str(call.id),
        "arguments_sha256": argument_digest(call.arguments),
    }
    if reason is not None:
        detail["reason"] = reason
    return audit.Entry(
        f"assistant.tool_call.{'approve' if approve else 'deny'}",
        actor,
        run.workspace_id,
        target=call.name,
        detail=detail,
    )
