"""Fan-out and fan-in in the job layer, with real workers: a job starts children and waits;
the follow-up runs exactly once when the last child ends, whichever ends last and however
(finished, failed, stopped, or retried after its worker was killed); the waiting job ends as
the follow-up does; cancelling it stops everything under it."""

from __future__ import annotations

import signal
import uuid

import psutil
import pytest

from citeline.jobs.models import JobState
from citeline.resources import Resources
from tests.conftest import WorkerFactory, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.each_redis]


def ended(resources: Resources, job_id: uuid.UUID) -> bool:
    return JobState(resources.jobs().get(job_id).state).terminal


def gathered(resources: Resources, parent: uuid.UUID) -> int:
    groups = resources.jobs().groups(parent)
    assert len(groups) == 1
    return int(resources.redis.get(f"test:gather:{groups[0].id}") or 0)


@pytest.mark.parametrize("mode", ["inprocess", "fork"])
def test_the_follow_up_runs_once_after_every_child(
    resources: Resources, start_worker: WorkerFactory, mode: str
) -> None:
    jobs = resources.jobs()
    parent = jobs.enqueue("test.fan", {"count": 12})
    start_worker(mode)
    start_worker(mode)  # two workers race to end the last children
    wait_for(lambda: ended(resources, parent.id), timeout=60)
    done = jobs.get(parent.id)
    assert done.state == "finished", done.error
    assert jobs.result(parent.id) == {"total": 12, "ended": 12, "failed": 0, "stopped": 0}
    assert gathered(resources, parent.id) == 1
    children = jobs.children(parent.id)
    assert [c.kind for c in children].count("test.echo") == 12
    assert [c.kind for c in children].count("test.gather") == 1
    assert all(c.state == "finished" for c in children)
    group = jobs.groups(parent.id)[0]
    assert (group.ended, group.progress, group.follow_up_state) == (12, 1.0, "finished")
    types = [e.type for e in resources.events.read(parent.id)]
    assert types[:3] == ["queued", "started", "waiting"] and types[-1] == "finished"


def test_a_job_with_no_children_goes_straight_to_its_follow_up(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    parent = resources.jobs().enqueue("test.fan", {"count": 0})
    start_worker()
    wait_for(lambda: ended(resources, parent.id))
    assert resources.jobs().result(parent.id) == {
        "total": 0, "ended": 0, "failed": 0, "stopped": 0
    }  # fmt: skip


def test_failed_children_are_counted_and_the_rest_go_on(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    jobs = resources.jobs()
    parent = jobs.enqueue("test.fan", {"count": 3, "child": "test.bad_input"})
    start_worker()
    wait_for(lambda: ended(resources, parent.id))
    assert jobs.get(parent.id).state == "finished"
    assert jobs.result(parent.id)["failed"] == 3


def test_the_cancel_rule_stops_the_siblings_of_a_failed_child(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    jobs = resources.jobs()
    blocked = jobs.enqueue(
        "test.fan",
        {"count": 3, "child": "test.block", "child_args": {"max_seconds": 60},
         "on_failure": "cancel"},
    )  # fmt: skip
    start_worker(mode="inprocess")
    running = wait_for(lambda: [c for c in jobs.children(blocked.id) if c.state == "started"])
    first = running[0]  # type: ignore[index]
    wait_for(lambda: resources.redis.get(f"test:block:{first.id}:beats"))
    # A failure of one child: the reaper fails a job whose worker went silent; here the
    # lifecycle does what it would.
    resources.lifecycle.fail_or_retry(first.id, 1, 1, "broke", retry=False)
    resources.redis.set(f"test:block:{first.id}:release", 1)  # its function may now return
    wait_for(lambda: ended(resources, blocked.id), timeout=45)
    assert jobs.result(blocked.id) == {"total": 3, "ended": 3, "failed": 1, "stopped": 2}
    assert gathered(resources, blocked.id) == 1


def test_cancelling_a_waiting_job_stops_its_children_and_its_follow_up(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    jobs = resources.jobs()
    parent = jobs.enqueue(
        "test.fan", {"count": 4, "child": "test.block", "child_args": {"max_seconds": 60}}
    )
    start_worker(mode="inprocess")
    wait_for(lambda: jobs.get(parent.id).state == "waiting")
    assert 0.0 <= jobs.get(parent.id).progress < 1.0
    stopped = jobs.cancel(parent.id)
    assert stopped.state == "stopped"
    wait_for(lambda: all(JobState(c.state).terminal for c in jobs.children(parent.id)))
    assert {c.state for c in jobs.children(parent.id)} == {"stopped"}
    group = jobs.groups(parent.id)[0]
    assert group.cancelled and group.follow_up_id is None
    assert gathered(resources, parent.id) == 0


def test_a_child_killed_mid_run_is_retried_and_the_follow_up_still_runs_once(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    jobs = resources.jobs()
    parent = jobs.enqueue(
        "test.fan", {"count": 1, "child": "test.block", "child_args": {"max_seconds": 60}}
    )
    doomed = start_worker()  # fork mode: the child runs in a work-horse
    wait_for(lambda: len(jobs.children(parent.id)) == 1)
    child = jobs.children(parent.id)[0]
    wait_for(lambda: resources.redis.get(f"test:block:{child.id}:beats"))
    for process in [
        *psutil.Process(doomed.pid).children(recursive=True),
        psutil.Process(doomed.pid),
    ]:
        process.send_signal(signal.SIGKILL)
    doomed.wait()
    resources.redis.set(f"test:block:{child.id}:release", 1)
    start_worker()
    wait_for(lambda: ended(resources, parent.id), timeout=60)
    assert jobs.get(child.id).attempt == 2
    assert jobs.result(parent.id) == {"total": 1, "ended": 1, "failed": 0, "stopped": 0}
    assert gathered(resources, parent.id) == 1


def test_a_child_writes_to_the_stream_of_the_job_waiting_for_it(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    parent = resources.jobs().enqueue("test.fan", {"count": 2, "child": "test.report_to_parent"})
    start_worker()
    wait_for(lambda: ended(resources, parent.id))
    notes = [e.data for e in resources.events.read(parent.id) if e.type == "child.note"]
    assert sorted(n["value"] for n in notes) == [0, 1]
