"""Citeline job kinds the benchmarks run."""

from __future__ import annotations

import time

from citeline.jobs.context import JobContext
from citeline.jobs.registry import job_kind


@job_kind("bench.noop")
def noop(context: JobContext) -> None:
    return None


@job_kind("bench.emit")
def emit(context: JobContext) -> int:
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
