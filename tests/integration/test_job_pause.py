"""A job that pauses: suspended until someone resumes it (it holds no worker and the reaper
leaves it be), or deferred to run again shortly; neither uses up an attempt."""

from __future__ import annotations

import time

import pytest

from citeline.errors import Conflict
from citeline.resources import Resources
from tests.conftest import WorkerFactory, wait_for

pytestmark = pytest.mark.each_redis


def state(resources: Resources, job_id: object) -> str:
    return resources.jobs().get(job_id).state  # type: ignore[arg-type]


def test_a_suspended_job_waits_without_a_worker_until_resumed(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.pause")
    start_worker(mode="inprocess")
    wait_for(lambda: state(resources, job.id) == "suspended")
    # Longer than a lost worker's grace: the reaper does not take it for dead.
    time.sleep(resources.settings.job_lost_after_seconds * 2)
    assert state(resources, job.id) == "suspended"
    follower = resources.jobs().enqueue("test.echo", {"value": 1})
    wait_for(lambda: state(resources, follower.id) == "finished")  # the worker is free
    resumed = resources.lifecycle.resume(job.id, {"by": "tester"})
    assert resumed is not None and resumed.type == "resumed"
    assert resources.lifecycle.resume(job.id) is None  # only once
    wait_for(lambda: state(resources, job.id) == "finished")
    final = resources.jobs().get(job.id)
    assert final.attempt == 2 and final.max_attempts == 2
    assert resources.jobs().result(job.id) == {"attempt": 2}
    types = [e.type for e in resources.events.read(job.id)]
    assert types == ["queued", "started", "suspended", "resumed", "started", "finished"]


def test_a_suspended_job_can_be_cancelled(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.pause")
    start_worker(mode="inprocess")
    wait_for(lambda: state(resources, job.id) == "suspended")
    assert resources.jobs().cancel(job.id).state == "stopped"
    assert resources.lifecycle.resume(job.id) is None
    with pytest.raises(Conflict):
        resources.jobs().cancel(job.id)


def test_a_job_suspended_for_a_time_is_resumed_by_the_reaper_when_it_runs_out(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.pause", {"wait": 0.5})
    start_worker(mode="inprocess")
    wait_for(lambda: state(resources, job.id) == "finished", timeout=20)
    types = [e.type for e in resources.events.read(job.id)]
    assert types == ["queued", "started", "suspended", "resumed", "started", "finished"]
    resumed = resources.events.read(job.id)[3]
    assert resumed.data["reason"] == "its time to wait ran out"
    # Suspended with no time given, a job waits for good even where it was deferred before.
    waiting = resources.jobs().enqueue("test.pause")
    wait_for(lambda: state(resources, waiting.id) == "suspended")
    assert resources.jobs().get(waiting.id).run_at is None


def test_a_job_whose_decision_came_while_it_was_pausing_queues_itself_again(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.pause", {"decided": True})
    start_worker(mode="inprocess")
    wait_for(lambda: state(resources, job.id) == "finished")
    events = resources.events.read(job.id)
    assert [e.type for e in events] == [
        "queued", "started", "suspended", "resumed", "started", "finished"
    ]  # fmt: skip
    assert events[3].data["reason"] == "decided while the job was pausing"


def test_a_deferred_job_runs_again_without_using_an_attempt(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.pause", {"defer": True})
    start_worker(mode="inprocess")
    wait_for(lambda: state(resources, job.id) == "finished")
    final = resources.jobs().get(job.id)
    assert (final.attempt, final.max_attempts) == (2, 2)
    types = [e.type for e in resources.events.read(job.id)]
    assert types == ["queued", "started", "deferred", "queued", "started", "finished"]
