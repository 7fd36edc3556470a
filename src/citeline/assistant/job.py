"""The `assistant.run` job: one reply to one user message, its events on the job's stream.

At a tool call that needs approval the job suspends (no worker waits); the decision, or the
reaper once `assistant_approval_timeout_seconds` have passed, queues its next attempt, which
goes on from the run's checkpoint (`loop`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from citeline.assistant.loop import AssistantDeps, Hooks, Run
from citeline.assistant.models import RunState
from citeline.assistant.state import LiveState
from citeline.jobs.context import JobCancelled, JobContext
from citeline.jobs.registry import JobKind

RUN_KIND = "assistant.run"


def run_job(context: JobContext[AssistantDeps]) -> dict[str, Any]:
    live = LiveState(context.connection, context.settings.assistant_state_ttl_seconds)

    def emit(type_: str, data: Mapping[str, Any] | None) -> None:
        context.emit(type_, data)

    run = Run(
        context.services,
        live,
        uuid.UUID(str(context.args["run_id"])),
        Hooks(emit, context.check_cancelled, context.lease),
        context.owner,
        context.job_id,
    )
    try:
        outcome = run.go()
        pause = run.paused
        if pause is not None:
            context.suspend(
                {
                    "run_id": str(run.run_id),
                    "tool_call": str(pause.tool_call),
                    "name": pause.name,
                    "until": pause.until.isoformat(),
                },
                until=pause.until,
                still_waiting=run.still_waiting,
            )
        return outcome
    except JobCancelled:
        run.close(RunState.cancelled, 0, "cancelled")
        raise
    finally:
        # The MCP toolbox holds live connections (stdio servers' processes).
        close = getattr(run.toolbox, "close", None)
        if callable(close):
            close()


RUN = JobKind(RUN_KIND, run_job, queue="high", timeout_seconds=1800, max_attempts=1)
