"""Scale-in: a worker told to stop (SIGTERM) finishes its running job, or hands it back after
`worker_stop_seconds` so that another worker runs it; no job is lost or run twice."""

from __future__ import annotations

import time

import pytest

from citeline.jobs.models import JobState
from citeline.resources import Resources
from tests.conftest import WorkerFactory, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.each_redis]


def state(resources: Resources, job_id: object) -> str:
    return resources.jobs().get(job_id).state  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["inprocess", "fork"])
def test_a_stopping_worker_hands_a_long_job_back_within_its_grace(
    resources: Resources, start_worker: WorkerFactory, mode: str
) -> None:
    job = resources.jobs().enqueue("test.block", {"max_seconds": 120}, max_attempts=3)
    stopping = start_worker(mode, worker_stop_seconds=1.0)
    beats = f"test:block:{job.id}:beats"
    wait_for(lambda: resources.redis.get(beats), timeout=60)
    signalled = time.monotonic()
    stopping.terminate()
    assert stopping.wait(30) == 0
    assert time.monotonic() - signalled < 15
    # Handed back at once: retried without waiting for its liveness key to lapse.
    handed = resources.jobs().get(job.id)
    assert handed.state in (JobState.scheduled.value, JobState.queued.value)
    assert handed.attempt == 2
    assert "its worker was stopped" in (handed.error or "")
    resources.redis.set(f"test:block:{job.id}:release", 1)
    start_worker(mode)
    wait_for(lambda: state(resources, job.id) == JobState.finished.value, timeout=60)
    assert resources.jobs().result(job.id) == "released on attempt 2"


def test_a_stopping_worker_finishes_a_job_that_ends_within_its_grace(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.block", {"max_seconds": 120})
    stopping = start_worker("inprocess", worker_stop_seconds=30.0)
    wait_for(lambda: resources.redis.get(f"test:block:{job.id}:beats"), timeout=60)
    stopping.terminate()
    resources.redis.set(f"test:block:{job.id}:release", 1)
    assert stopping.wait(30) == 0
    final = resources.jobs().get(job.id)
    assert final.state == JobState.finished.value and final.attempt == 1
    assert resources.jobs().result(job.id) == "released on attempt 1"
