"""Throughput of answer-sized and ingestion jobs on 1, 2 and 3 worker hosts of the namespace
cluster (tests/cluster), as ratios to one host, and the time from a worker host's death to its
job running on another host. Needs root (it makes network namespaces).

    sudo .venv/bin/python -m benchmarks.cluster_scaling [--work-jobs 60] [--work-seconds 0.5]
        [--documents 24] [--deaths 3]

"Answer-sized" jobs hold a worker for `--work-seconds` without using the CPU (a remote model
answering): they measure how the job machinery spreads work over hosts. Ingestion jobs are real
(parse, chunk, embed on the CPU): on a 2-core machine their scaling stops at the cores, not the
hosts. Death-to-elsewhere depends on CITELINE_JOB_LOST_AFTER_SECONDS, 3 s in the cluster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from sqlalchemy import text
from tests.cluster.cluster import Cluster, make_cluster, moved_on, running_on
from tests.cluster.load import DOCUMENT
from tests.conftest import ROOT, wait_for

from citeline.db.base import utcnow

RESULTS = ROOT / "benchmarks" / "results"


def span(cluster: Cluster, ids: list[uuid.UUID], timeout: float) -> float:
    """Seconds from the first job's start to the last job's end, once all have finished."""

    def finished() -> bool:
        with cluster.root.sessions() as session:
            count = session.execute(
                text("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND state = 'finished'"),
                {"ids": ids},
            ).scalar_one()
        return int(count) == len(ids)

    wait_for(finished, timeout=timeout, interval=0.2)
    with cluster.root.sessions() as session:
        first, last = session.execute(
            text("SELECT min(started_at), max(finished_at) FROM jobs WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).one()
    return float((last - first).total_seconds())


def work_throughput(cluster: Cluster, count: int, seconds: float) -> float:
    jobs = cluster.root.jobs()
    ids = [jobs.enqueue("test.work", {"seconds": seconds}).id for _ in range(count)]
    return count / span(cluster, ids, timeout=60 + count * seconds * 2)


def ingestion_throughput(cluster: Cluster, kb_id: str, count: int, round_: int) -> float:
    files = [
        ("files", (f"r{round_}-{n}.txt", DOCUMENT.format(n=f"{round_}-{n}").encode(), "text/plain"))
        for n in range(count)
    ]
    with cluster.client("api1") as client:
        response = client.post(f"/v1/knowledge-bases/{kb_id}/documents", files=files)
    response.raise_for_status()
    ids = [uuid.UUID(i) for i in response.json()["job_ids"]]
    return count / span(cluster, ids, timeout=120 + count * 5)


def death_to_elsewhere(cluster: Cluster) -> float:
    """Kill the host running a long job; seconds until that job starts on another host."""
    job = cluster.root.jobs().enqueue("test.work", {"seconds": 30.0})

    def located() -> tuple[str, tuple[uuid.UUID, int]] | None:
        for name, host in cluster.workers.items():
            running = running_on(cluster, host)
            if running is not None and running[0] == job.id:
                return name, running
        return None

    where = wait_for(located, timeout=60, interval=0.05)
    assert isinstance(where, tuple)
    name, (job_id, attempt) = where
    killed = time.monotonic()
    cluster.workers[name].kill()
    dead = utcnow()

    def elsewhere() -> bool:
        # A later attempt; or the same one, if the host died before recording its start.
        row = cluster.root.jobs().get(job_id)
        again = row.attempt > attempt or (row.started_at is not None and row.started_at > dead)
        return again and row.state == "started"

    wait_for(elsewhere, timeout=60, interval=0.05)
    took = time.monotonic() - killed
    cluster.root.jobs().cancel(job_id)
    wait_for(lambda: moved_on(cluster, job_id, attempt + 1), timeout=30, interval=0.1)
    cluster.start_worker(name)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-jobs", type=int, default=60)
    parser.add_argument("--work-seconds", type=float, default=0.5)
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--deaths", type=int, default=3)
    parser.add_argument("--hosts", type=int, choices=(2, 3), default=3, help="worker hosts")
    args = parser.parse_args()

    cluster = make_cluster(api_count=1, worker_count=args.hosts)
    try:
        with cluster.client("api1") as client:
            kb_id = client.post("/v1/knowledge-bases", json={"name": "bench"}).json()["id"]
        for name in [f"w{n}" for n in range(2, args.hosts + 1)]:
            cluster.workers[name].kill()
        # Warm the one worker (its embedding model loads at its first ingestion).
        ingestion_throughput(cluster, kb_id, 1, 0)
        results: dict[str, dict[str, float]] = {"work_jobs_per_s": {}, "documents_per_s": {}}
        for hosts in range(1, args.hosts + 1):
            if hosts > 1:
                cluster.start_worker(f"w{hosts}")
                ingestion_throughput(cluster, kb_id, 1, 100 + hosts)  # warm the new worker
            work = work_throughput(cluster, args.work_jobs, args.work_seconds)
            docs = ingestion_throughput(cluster, kb_id, args.documents, hosts)
            results["work_jobs_per_s"][str(hosts)] = round(work, 2)
            results["documents_per_s"][str(hosts)] = round(docs, 2)
            print(f"{hosts} worker host(s): {work:.2f} answer-sized jobs/s, {docs:.2f} documents/s")
        deaths = [death_to_elsewhere(cluster) for _ in range(args.deaths)]
    finally:
        cluster.close()
    one_work, one_docs = results["work_jobs_per_s"]["1"], results["documents_per_s"]["1"]
    report = {
        **results,
        "work_scaling": {k: round(v / one_work, 2) for k, v in results["work_jobs_per_s"].items()},
        "ingestion_scaling": {
            k: round(v / one_docs, 2) for k, v in results["documents_per_s"].items()
        },
        "death_to_elsewhere_s": {
            "median": round(statistics.median(deaths), 2),
            "max": round(max(deaths), 2),
            "n": len(deaths),
        },
    }
    print(f"scaling (answer-sized, vs 1 host): {report['work_scaling']}")
    print(f"scaling (ingestion, vs 1 host): {report['ingestion_scaling']}")
    print(f"worker host death to its job running elsewhere: {report['death_to_elsewhere_s']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster_scaling.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
