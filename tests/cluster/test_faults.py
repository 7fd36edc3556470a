"""A Citeline cluster on this machine loses a worker host, a worker's link, Valkey,
PostgreSQL and an API host under a steady load, and loses no job.

Hosts are network namespaces the suite creates and deletes (tests/cluster/network.py); it
needs root. `make test-cluster` runs it alone; figures go to test-artifacts/cluster/.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from citeline.db.base import utcnow
from citeline.jobs.models import JobState
from tests.cluster.cluster import Cluster, running_on, tail
from tests.cluster.load import Follower, Load
from tests.conftest import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

ARTIFACTS = ROOT / "test-artifacts" / "cluster"


def a_job_finishes(cluster: Cluster, load: Load, timeout: float = 60.0) -> None:
    """Some job submitted from now on finishes: the cluster serves again."""
    mark = len(load.submitted)

    def done() -> bool:
        fresh = load.submitted[mark:]
        return any(cluster.root.jobs().get(j).state == JobState.finished.value for j in fresh)

    wait_for(done, timeout=timeout, interval=0.25)


def a_host_running_a_long_job(cluster: Cluster) -> tuple[str, uuid.UUID, int]:
    """Enqueue an 8 s job and find the worker host running it (so a fault hits it mid-job)."""
    job = cluster.root.jobs().enqueue("test.work", {"seconds": 8.0}, queue="high", max_attempts=5)

    def located() -> tuple[str, uuid.UUID, int] | None:
        for name, host in cluster.workers.items():
            running = running_on(cluster, host)
            if running is not None and running[0] == job.id:
                return name, running[0], running[1]
        return None

    found = wait_for(located, timeout=60, interval=0.05)
    assert isinstance(found, tuple)
    return found


def retried(cluster: Cluster, job_id: uuid.UUID, attempt: int, since: datetime) -> bool:
    """The job runs or ran on another host than the one that failed at `since`: a later
    attempt, or the same one started after `since` (the host had taken it from RQ but not
    recorded the start, so the reaper pushed the attempt again)."""
    job = cluster.root.jobs().get(job_id)
    if job.attempt > attempt:
        return job.state != JobState.scheduled.value
    return job.started_at is not None and job.started_at > since


def kill_a_worker_host(cluster: Cluster) -> float:
    """A worker host dies (power loss) mid-job: seconds until the job runs elsewhere."""
    name, job_id, attempt = a_host_running_a_long_job(cluster)
    fault = time.monotonic()
    assert cluster.workers[name].kill() >= 1
    dead = utcnow()
    wait_for(lambda: retried(cluster, job_id, attempt, dead), timeout=60, interval=0.05)
    recovered = time.monotonic() - fault
    cluster.start_worker(name)
    return recovered


def cut_a_worker_link(cluster: Cluster) -> float:
    """A worker host's link is cut mid-job, then restored: seconds until the job runs
    elsewhere. The cut-off worker finishes its attempt later, and is refused."""
    name, job_id, attempt = a_host_running_a_long_job(cluster)
    host = cluster.workers[name]
    fault = time.monotonic()
    host.cut()
    cut = utcnow()
    try:
        wait_for(lambda: retried(cluster, job_id, attempt, cut), timeout=60, interval=0.05)
        return time.monotonic() - fault
    finally:
        host.restore()


def restart_valkey(cluster: Cluster, load: Load) -> float:
    """Valkey restarts (its append-only file keeps the queues): seconds until jobs finish."""
    fault = time.monotonic()
    cluster.valkey.stop()
    cluster.valkey.start()
    a_job_finishes(cluster, load)
    return time.monotonic() - fault


def restart_postgres(cluster: Cluster, load: Load) -> float:
    fault = time.monotonic()
    cluster.postgres.stop()
    cluster.postgres.start()
    a_job_finishes(cluster, load)
    return time.monotonic() - fault


def kill_an_api_host_under_streams(cluster: Cluster) -> tuple[float, list[Follower]]:
    """Clients follow jobs' events through api1, which dies: they resume on api2."""
    jobs = cluster.root.jobs()
    followers = [
        Follower(
            cluster,
            jobs.enqueue("test.events", {"count": 40, "pause": 0.1}, queue="high").id,
            ["api1", "api2"],
        )
        for _ in range(4)
    ]
    for follower in followers:
        follower.start()
    wait_for(lambda: all(len(f.seen) >= 3 for f in followers), timeout=90, interval=0.1)
    fault = time.monotonic()
    cluster.apis["api1"].kill()
    for follower in followers:
        follower.join(120)
    done = time.monotonic() - fault
    cluster.start_api("api1")
    return done, followers


def active_jobs(cluster: Cluster) -> int:
    with cluster.root.sessions() as session:
        return int(
            session.execute(
                text("SELECT count(*) FROM jobs WHERE state NOT IN ('finished','failed','stopped')")
            ).scalar_one()
        )


def check_jobs(cluster: Cluster, load: Load) -> dict[str, int]:
    """Every job ended once: finished, or failed with a reason after all its attempts."""
    try:
        wait_for(lambda: active_jobs(cluster) == 0, timeout=180, interval=0.5)
    except AssertionError:
        logs = {name: tail(cluster.directory / f"{name}.log") for name in cluster.workers}
        raise AssertionError(f"jobs still active; worker logs: {logs}") from None
    with cluster.root.sessions() as session:
        rows = session.execute(
            text("SELECT id, state, attempt, max_attempts, error FROM jobs")
        ).all()
        twice = session.execute(
            text(
                "SELECT job_id FROM job_events WHERE type = 'finished' "
                "GROUP BY job_id HAVING count(*) > 1"
            )
        ).all()
    states = {row.id: row.state for row in rows}
    assert set(load.submitted) <= set(states)
    assert twice == []
    assert {row.state for row in rows} <= {JobState.finished.value, JobState.failed.value}
    # A submission that Redis refused as its first attempt was pushed was answered 503 and
    # recorded failed with that reason; the client submitted again (tests/cluster/load.py).
    refused = {r.id for r in rows if (r.error or "").startswith("queue unavailable")}
    assert not refused & set(load.submitted)
    failed = [r for r in rows if r.state == JobState.failed.value and r.id not in refused]
    for row in failed:
        assert row.error and row.attempt == row.max_attempts, row
    return {
        "submitted": len(states) - len(refused),
        "finished": sum(1 for s in states.values() if s == JobState.finished.value),
        "failed": len(failed),
        "retried": sum(1 for row in rows if row.attempt > 1),
    }


def check_streams(cluster: Cluster, followers: list[Follower]) -> int:
    """Each follower saw every event of its job exactly once, in order; how many resumed."""
    for follower in followers:
        assert follower.ended == "finished", (follower.seen, follower.reconnects)
        with cluster.root.sessions() as session:
            last = session.execute(
                text("SELECT max(seq) FROM job_events WHERE job_id = :id"),
                {"id": follower.job_id},
            ).scalar_one()
        assert follower.seen == list(range(1, last + 1))
    resumed = sum(1 for f in followers if f.reconnects > 0)
    assert resumed >= 1, "no stream was cut: the API host died after every job ended"
    return resumed


def check_documents(cluster: Cluster, load: Load, kb_id: str) -> None:
    """Every accepted document is indexed, with its chunks. One refused by an error after it
    was stored (Redis down as its job was pushed) is indexed too: no half-done upload."""
    with cluster.client("api2") as client:
        listed = client.get(f"/v1/knowledge-bases/{kb_id}/documents").json()["documents"]
    names = {doc["filename"] for doc in listed}
    assert set(load.documents) <= names <= set(load.documents) | load.refused_documents
    for doc in listed:
        assert doc["status"] == "ready" and doc["chunk_count"] > 0, doc


@pytest.mark.timeout(900)
def test_the_cluster_loses_hosts_links_redis_and_postgres_and_no_job(cluster: Cluster) -> None:
    with cluster.client("api1") as client:
        created = client.post("/v1/knowledge-bases", json={"name": "cluster"})
        assert created.status_code == 201, created.text
        kb_id = created.json()["id"]
    load = Load(cluster, kb_id)
    started = time.monotonic()
    load.start()
    try:
        a_job_finishes(cluster, load)
        recovery = {
            "worker_host_killed": kill_a_worker_host(cluster),
            "worker_link_cut": cut_a_worker_link(cluster),
            "valkey_restarted": restart_valkey(cluster, load),
            "postgres_restarted": restart_postgres(cluster, load),
        }
        recovery["api_host_killed_streams_done"], followers = kill_an_api_host_under_streams(
            cluster
        )
    finally:
        load.stop()
    figures: dict[str, Any] = {
        "load_seconds": round(time.monotonic() - started, 1),
        "recovery_seconds": {name: round(value, 2) for name, value in recovery.items()},
        **check_jobs(cluster, load),
        "streams_resumed": check_streams(cluster, followers),
        "documents": len(load.documents),
        "refused_during_faults": load.refused,
    }
    check_documents(cluster, load, kb_id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
