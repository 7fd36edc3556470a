"""Jobs end to end: real worker processes, the embedded PostgreSQL, Valkey or external Redis."""

from __future__ import annotations

import signal
import uuid
from datetime import timedelta

import psutil
import pytest
from rq import Queue
from rq.job import Job as RQJob
from rq.job import JobStatus

from citeline.db.base import utcnow
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.jobs.models import JobState
from citeline.resources import Resources
from tests.conftest import WorkerFactory, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.each_redis]


def state_of(resources: Resources, job_id: uuid.UUID) -> str:
    return resources.jobs().get(job_id).state


def ended(resources: Resources, job_id: uuid.UUID) -> bool:
    return JobState(state_of(resources, job_id)).terminal


@pytest.mark.parametrize("mode", ["fork", "inprocess"])
def test_job_runs_and_records_result_and_ordered_events(
    resources: Resources, start_worker: WorkerFactory, mode: str
) -> None:
    jobs = resources.jobs()
    job = jobs.enqueue("test.echo", {"value": "hello"}, owner="alice")
    assert job.state == "queued"
    start_worker(mode)
    wait_for(lambda: ended(resources, job.id))
    done = jobs.get(job.id)
    assert done.state == "finished", done.error
    assert jobs.result(job.id) == {"echo": "hello", "attempt": 1}
    assert done.progress == 1.0
    assert done.started_at is not None and done.finished_at is not None
    events = resources.events.read(job.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events] == ["queued", "started", "progress", "finished"]
    assert events[2].data == {"progress": 0.5, "message": "halfway"}


def test_unknown_kind_and_bad_arguments_are_refused(resources: Resources) -> None:
    jobs = resources.jobs()
    with pytest.raises(InvalidInput, match="unknown job kind"):
        jobs.enqueue("no.such.kind")
    with pytest.raises(InvalidInput, match="JSON"):
        jobs.enqueue("test.echo", {"value": object()})
    with pytest.raises(InvalidInput, match="unknown queue"):
        jobs.enqueue("test.echo", queue="urgent")
    assert jobs.list() == []


def test_unknown_job_is_not_found(resources: Resources) -> None:
    with pytest.raises(NotFound):
        resources.jobs().get(uuid.uuid4())


def test_result_before_finish_is_a_conflict(resources: Resources) -> None:
    job = resources.jobs().enqueue("test.echo")
    with pytest.raises(Conflict, match="queued"):
        resources.jobs().result(job.id)


def test_failing_job_is_retried_with_backoff_then_fails_with_reason(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.flaky", max_attempts=3)
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    failed = resources.jobs().get(job.id)
    assert failed.state == "failed"
    assert failed.attempt == 3
    assert failed.error == "RuntimeError: flaky failure on attempt 3"
    types = [e.type for e in resources.events.read(job.id)]
    assert types.count("retrying") == 2
    assert types[-1] == "failed"


def test_flaky_job_succeeds_on_a_later_attempt(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.flaky", {"succeed_on": 2}, max_attempts=3)
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    assert resources.jobs().result(job.id) == "ok on attempt 2"


def test_caller_mistakes_are_not_retried(resources: Resources, start_worker: WorkerFactory) -> None:
    job = resources.jobs().enqueue("test.bad_input", max_attempts=3)
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    failed = resources.jobs().get(job.id)
    assert (failed.state, failed.attempt) == ("failed", 1)
    assert "the document is empty" in (failed.error or "")


@pytest.mark.parametrize(("max_attempts", "outcome"), [(2, "finished"), (1, "failed")])
def test_worker_killed_mid_job_is_retried_or_failed_with_reason(
    resources: Resources, start_worker: WorkerFactory, max_attempts: int, outcome: str
) -> None:
    job = resources.jobs().enqueue("test.block", {"max_seconds": 60}, max_attempts=max_attempts)
    doomed = start_worker()
    beats = f"test:block:{job.id}:beats"
    wait_for(lambda: resources.redis.get(beats))
    # RQ's work-horse runs in a session of its own: kill it and its parent, as the OOM killer might.
    horses = psutil.Process(doomed.pid).children(recursive=True)
    assert horses, "the job should be running in a work-horse"
    for process in [*horses, psutil.Process(doomed.pid)]:
        process.send_signal(signal.SIGKILL)
    doomed.wait()
    resources.redis.set(f"test:block:{job.id}:release", 1)
    start_worker()
    wait_for(lambda: ended(resources, job.id), timeout=45)
    final = resources.jobs().get(job.id)
    assert final.state == outcome
    if outcome == "finished":
        assert final.attempt == 2
        assert resources.jobs().result(job.id) == "released on attempt 2"
    else:
        assert "stopped responding" in (final.error or "")


def test_cancelling_a_queued_job_means_it_never_runs(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.echo", {"value": 1})
    stopped = resources.jobs().cancel(job.id)
    assert stopped.state == "stopped"
    follower = resources.jobs().enqueue("test.echo", {"value": 2})
    start_worker()
    wait_for(lambda: ended(resources, follower.id))
    assert state_of(resources, job.id) == "stopped"
    assert [e.type for e in resources.events.read(job.id)] == ["queued", "stopped"]
    with pytest.raises(Conflict, match="already stopped"):
        resources.jobs().cancel(job.id)


@pytest.mark.parametrize(
    ("mode", "cooperative"), [("fork", True), ("fork", False), ("inprocess", True)]
)
def test_cancelling_a_running_job_stops_the_work(
    resources: Resources, start_worker: WorkerFactory, mode: str, cooperative: bool
) -> None:
    job = resources.jobs().enqueue("test.block", {"cooperative": cooperative, "max_seconds": 30})
    start_worker(mode)
    beats = f"test:block:{job.id}:beats"
    wait_for(lambda: resources.redis.get(beats))
    resources.jobs().cancel(job.id)
    assert state_of(resources, job.id) == "stopped"

    def settled() -> bool:
        before = int(resources.redis.get(beats) or 0)
        wait_for(lambda: True, timeout=1)
        import time

        time.sleep(0.5)
        return int(resources.redis.get(beats) or 0) == before

    wait_for(settled, timeout=15)
    assert state_of(resources, job.id) == "stopped"
    assert resources.events.read(job.id)[-1].type == "stopped"


@pytest.mark.parametrize("mode", ["fork", "inprocess"])
def test_timeout_fails_the_job(
    resources: Resources, start_worker: WorkerFactory, mode: str
) -> None:
    job = resources.jobs().enqueue(
        "test.block", {"cooperative": False, "max_seconds": 30}, timeout_seconds=1
    )
    start_worker(mode)
    wait_for(lambda: ended(resources, job.id))
    failed = resources.jobs().get(job.id)
    assert failed.state == "failed"
    assert "timed out" in (failed.error or "")


def test_a_queued_job_rq_failed_before_it_started_is_queued_again(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    """A worker that loses PostgreSQL or Redis as it takes a job leaves RQ's copy failed
    while the record still says queued (found by the cluster suite, tests/cluster)."""
    job = resources.jobs().enqueue("test.echo", {"value": "again"})
    rq_id = f"{job.id}_1"
    taken = RQJob.fetch(rq_id, connection=resources.redis)
    Queue("default", connection=resources.redis).remove(rq_id)
    taken.set_status(JobStatus.FAILED)
    assert resources.jobs().get(job.id).state == "queued"
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    assert resources.jobs().result(job.id) == {"echo": "again", "attempt": 1}


def test_a_queued_job_whose_worker_died_as_it_took_it_is_queued_again(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    """RQ marked its copy started, but the worker died before the attempt started: RQ says
    `started` until its own registry clean-up, minutes later; the reaper must not wait."""
    job = resources.jobs().enqueue("test.echo", {"value": "again"})
    rq_id = f"{job.id}_1"
    Queue("default", connection=resources.redis).remove(rq_id)
    taken = RQJob.fetch(rq_id, connection=resources.redis)
    with resources.redis.pipeline() as pipe:
        taken.prepare_for_execution("a-worker-that-died", pipe)
        pipe.execute()
    assert taken.get_status() == JobStatus.STARTED
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    assert resources.jobs().result(job.id) == {"echo": "again", "attempt": 1}


def test_a_queued_job_a_worker_popped_and_lost_is_queued_again(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    """A worker took the id off the queue and lost it before marking it started (it died,
    or its dequeue failed after the pop): RQ's copy says `queued` but is on no queue."""
    job = resources.jobs().enqueue("test.echo", {"value": "again"})
    rq_id = f"{job.id}_1"
    Queue("default", connection=resources.redis).remove(rq_id)
    assert RQJob.fetch(rq_id, connection=resources.redis).get_status() == JobStatus.QUEUED
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    assert resources.jobs().result(job.id) == {"echo": "again", "attempt": 1}


def test_a_copy_just_popped_is_not_pushed_twice(resources: Resources) -> None:
    """A worker that has just popped a copy has not marked it started yet: the reaper waits
    one sweep before it counts a `queued` copy on no queue as lost."""
    job = resources.jobs().enqueue("test.echo", {"value": "once"})
    rq_id = f"{job.id}_1"
    Queue("default", connection=resources.redis).remove(rq_id)
    assert job.enqueued_at is not None
    due = job.enqueued_at + timedelta(seconds=resources.settings.job_lost_after_seconds + 0.5)
    wait_for(lambda: utcnow() > due)
    reaper = resources.reaper()
    first = reaper.sweep()
    assert first is not None and first.requeued == []
    second = reaper.sweep()
    assert second is not None and second.requeued == [job.id]
    assert Queue("default", connection=resources.redis).job_ids == [rq_id]


def test_job_the_queue_lost_is_queued_again(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.echo", {"value": "again"})
    resources.redis.flushdb()  # as if Redis restarted without persistence
    start_worker()
    wait_for(lambda: ended(resources, job.id))
    assert resources.jobs().result(job.id) == {"echo": "again", "attempt": 1}
