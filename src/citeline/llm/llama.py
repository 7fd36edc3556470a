"""Importing llama.cpp (the `xllamacpp` wheel) so that its threads wait without spinning.

The wheel is built with OpenMP, whose threads spin while they wait for each other. When another
process takes one of the cores, the thread it displaced holds up every spinning one: with two
threads on a 2-core machine and two other busy processes, generation ran at 0.31x the rate of
one thread on the idle machine, and at 0.80x with passive waiting (`benchmarks/llm_threads.py`,
docs/benchmarks.md). On an idle machine passive waiting gives up some of two threads' gain in
generation (1.26x instead of 1.69x one thread's; prompt 1.78x instead of 1.91x), a price paid
for never collapsing when the worker's own embedding or anything else wants a core.
"""

from __future__ import annotations

import os
from typing import Any

WAIT_POLICY = "OMP_WAIT_POLICY"


def import_llama() -> Any:
    """`xllamacpp`, with passive OpenMP waiting unless the environment chose otherwise.

    libgomp reads the policy once, when it is loaded with the wheel's library, so this must
    run before anything else in the process imports `xllamacpp`."""
    os.environ.setdefault(WAIT_POLICY, "passive")
    import xllamacpp

    return xllamacpp


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
