"""Every call of one of Citeline's own MCP tools, as for the tools Citeline calls elsewhere:
counted against the caller's per-tool rate limit first (`citeline.auth.CallLimit`, shared by
every API process through Redis), then recorded in the audit log (who, which tool, argument
digest, duration, outcome), whether it succeeded, failed or was refused. The audit rows go
through the MCP client's batching `AuditWriter`, off the calls' path, and are drained when the
endpoint stops (`close`)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from citeline.auth import Access, CallLimit, audit
from citeline.mcp import AuditWriter, argument_digest
from citeline.observability.logs import request_id_var
from citeline.resources import Resources

log = logging.getLogger(__name__)

ACTION = "mcp_endpoint.tool_call"


class CallGuard:
    """Server middleware: the rate limit and the audit row of each `tools/call`."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self._limit = CallLimit.shared(
            resources.redis, resources.settings.mcp_server_tool_calls_per_minute
        )
        self._auditor = AuditWriter(resources.events.statements)

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        access = getattr(getattr(ctx.request, "state", None), "access", None)
        if ctx.method != "tools/call" or ctx.request_id is None or not isinstance(access, Access):
            return await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, dict) else {}
        name = str(params.get("name") or "?")
        arguments = params.get("arguments")
        client = getattr(getattr(ctx.request, "client", None), "host", None)
        started = time.perf_counter()
        key = ("mcp-endpoint-tool", access.subject, name)
        refusal = (
            None
            if self._limit.admit_at_once(*key)
            else await anyio.to_thread.run_sync(self._refusal, key)
        )
        if refusal is not None:
            self._audit(access, name, arguments, client, started, "denied", refusal)
            return CallToolResult(content=[TextContent(type="text", text=refusal)], is_error=True)
        try:
            result = await call_next(ctx)
        except BaseException as exc:  # recorded (a cancelled call too), then raised on
            self._audit(access, name, arguments, client, started, "failed", repr(exc))
            raise
        is_error, text = _outcome(result)
        self._audit(
            access,
            name,
            arguments,
            client,
            started,
            "failed" if is_error else "ok",
            text if is_error else None,
        )
        return result

    def _refusal(self, key: tuple[str, str, str]) -> str | None:
        """Why the call may not run now (its limit is used up), or None."""
        wait = self._limit.hit(*key)
        if wait is None:
            return None
        return (
            f"Rate limited: the tool {key[2]!r} was called too often; the limit is "
            f"{self._limit.per_minute} calls per minute; try again in {wait} s."
        )

    def close(self) -> None:
        """Wait for the audit rows still being written (at the endpoint's stop)."""
        self._auditor.close()
        self._limit.flush()

    def _audit(
        self,
        access: Access,
        name: str,
        arguments: Any,
        client: str | None,
        started: float,
        outcome: str,
        error: str | None,
    ) -> None:
        detail: dict[str, Any] = {
            "tool": name,
            "arguments_sha256": argument_digest(arguments),
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if error is not None:
            detail["error"] = error[:500]
        self._auditor.add(
            audit.Entry(
                ACTION,
                access.subject,
                access.workspace_id,
                target=name,
                outcome=outcome,
                client=client,
                detail=detail,
                at=datetime.now(UTC),
                request_id=request_id_var.get() or None,
            )
        )


def _outcome(result: HandlerResult) -> tuple[bool, str]:
    """Whether a tool's result is an error, and its text (the wire form or the model)."""
    if isinstance(result, BaseModel):
        result = result.model_dump(by_alias=True, mode="json")
    if not isinstance(result, dict):
        return False, ""
    texts = [
        str(block.get("text", ""))
        for block in result.get("content") or []
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    return bool(result.get("isError")), "\n".join(texts)
