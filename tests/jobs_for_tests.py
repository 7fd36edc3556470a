"""Job kinds the tests register, as RQ's own tests define their fixture jobs."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from citeline.db.base import utcnow
from citeline.errors import InvalidInput
from citeline.jobs.context import JobContext
from citeline.jobs.fanout import Child, FollowUp
from citeline.jobs.models import JobGroup
from citeline.jobs.registry import JobKind


def echo(context: JobContext[object]) -> Any:
    context.progress(0.5, "halfway")
    return {"echo": context.args.get("value"), "attempt": context.attempt}


def noop(context: JobContext[object]) -> None:
    return None


def many_events(context: JobContext[object]) -> int:
    count = int(context.args["count"])
    for index in range(count):
        context.emit("tick", {"index": index})
        time.sleep(float(context.args.get("pause", 0.0)))
    return count


def flaky(context: JobContext[object]) -> str:
    """Fails until attempt `succeed_on` (never, if absent)."""
    succeed_on = context.args.get("succeed_on")
    if succeed_on is None or context.attempt < int(succeed_on):
        raise RuntimeError(f"flaky failure on attempt {context.attempt}")
    return f"ok on attempt {context.attempt}"


def bad_input(context: JobContext[object]) -> None:
    raise InvalidInput("the document is empty", field="document")


def block(context: JobContext[object]) -> str:
    """Beats a counter in Redis until released (key `release`), cancelled or out of time."""
    key = f"test:block:{context.job_id}"
    deadline = time.monotonic() + float(context.args.get("max_seconds", 60))
    while time.monotonic() < deadline:
        context.connection.incr(f"{key}:beats")
        if context.connection.exists(f"{key}:release"):
            return f"released on attempt {context.attempt}"
        if context.args.get("cooperative", True):
            context.check_cancelled()
        time.sleep(0.05)
    raise TimeoutError("never released")


def work(context: JobContext[object]) -> dict[str, int]:
    """Busy for `seconds` (an answer's worth of work), its heartbeat kept by the runtime."""
    deadline = time.monotonic() + float(context.args.get("seconds", 1.0))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return {"attempt": context.attempt}


TEST_KINDS: tuple[JobKind, ...] = (
    JobKind("test.echo", echo),
    JobKind("test.noop", noop),
    JobKind("test.events", many_events),
    JobKind("test.flaky", flaky),
    JobKind("test.bad_input", bad_input),
    JobKind("test.block", block),
    JobKind("test.work", work),
)


def fan(context: JobContext[object]) -> None:
    """Fans out `count` children of `child` (with `child_args`), then `gather`."""
    kind = BY_NAME[str(context.args.get("child", "test.echo"))]
    extra = dict(context.args.get("child_args", {}))
    children = [Child(kind, {"value": n, **extra}) for n in range(int(context.args["count"]))]
    context.fan_out(
        children,
        then=FollowUp(BY_NAME["test.gather"], {"tag": context.args.get("tag", "")}),
        on_failure=context.args.get("on_failure", "continue"),
    )


def gather(context: JobContext[object]) -> dict[str, int]:
    """The follow-up: counts its runs in Redis and returns its group's counts."""
    context.connection.incr(f"test:gather:{context.args['group_id']}")
    with context.sessions() as session:
        group = session.get_one(JobGroup, uuid.UUID(str(context.args["group_id"])))
        return {
            "total": group.total,
            "ended": group.ended,
            "failed": group.failed,
            "stopped": group.stopped,
        }


def report_to_parent(context: JobContext[object]) -> int:
    context.emit_parent("child.note", {"value": context.args.get("value")})
    return 1


TEST_KINDS = (
    *TEST_KINDS,
    JobKind("test.fan", fan),
    JobKind("test.gather", gather),
    JobKind("test.report_to_parent", report_to_parent),
)

BY_NAME = {kind.name: kind for kind in TEST_KINDS}


def pause(context: JobContext[object]) -> Any:
    """Suspends on its first attempt (until resumed, or for `wait` seconds; with `decided`, it
    finds it need not wait once paused); defers once when `defer` is set."""
    if context.args.get("defer") and not context.connection.exists(f"test:defer:{context.job_id}"):
        context.connection.set(f"test:defer:{context.job_id}", 1)
        context.defer(0.2, "not my turn yet")
        return None
    if context.attempt == 1 and not context.args.get("defer"):
        wait = context.args.get("wait")
        until = None if wait is None else utcnow() + timedelta(seconds=float(wait))
        decided = bool(context.args.get("decided"))  # the decision came while pausing
        context.suspend({"waiting_for": "a person"}, until=until, still_waiting=lambda: not decided)
        return None
    return {"attempt": context.attempt}


TEST_KINDS = (*TEST_KINDS, JobKind("test.pause", pause, max_attempts=1))
