"""Citeline job kinds the benchmarks run."""

from __future__ import annotations

import time

from citeline.jobs.context import JobContext
from citeline.jobs.registry import JobKind


def noop(context: JobContext[object]) -> None:
    return None


def emit(context: JobContext[object]) -> int:
    """Wait for the go signal, then emit `count` events stamped with the wall clock."""
    go = f"bench:go:{context.job_id}"
    deadline = time.monotonic() + 120
    while not context.connection.exists(go):
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.01)
    count = int(context.args["count"])
    for index in range(count):
        context.emit("tick", {"index": index, "sent": time.time()})
        time.sleep(float(context.args.get("pause", 0.02)))
    return count


BENCH_KINDS = (JobKind("bench.noop", noop), JobKind("bench.emit", emit))
