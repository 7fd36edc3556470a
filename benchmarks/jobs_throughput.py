"""No-op job throughput through Citeline's job service versus bare RQ on the same Valkey, for
each worker mode against RQ's matching worker class, and enqueue-to-start latency.

    .venv/bin/python -m benchmarks.jobs_throughput [--jobs 500] [--latency-jobs 100]

End to end is enqueue of all jobs, then one burst worker draining them (first start to last
end, so process start-up is not counted on either side).
"""

from __future__ import annotations

import argparse
import subprocess
import time

from rq import Queue
from rq.job import Job as RQJob
from sqlalchemy import select

from benchmarks.bare_jobs import noop as bare_noop
from benchmarks.common import PYTHON, bench_engines, child_env, summary
from benchmarks.job_kinds import BENCH_KINDS
from citeline.jobs.models import Job
from citeline.resources import Resources

RQ_CLASS = {"fork": "rq.Worker", "inprocess": "rq.SimpleWorker"}


def bare_rq(
    resources: Resources, count: int, env: dict[str, str], mode: str
) -> tuple[float, float]:
    queue = Queue("default", connection=resources.redis)
    began = time.perf_counter()
    jobs = [queue.enqueue(bare_noop) for _ in range(count)]
    enqueue = time.perf_counter() - began
    subprocess.run(
        [PYTHON, "-m", "rq.cli", "worker", "--burst", "--url", resources.redis_url,
         "--worker-class", RQ_CLASS[mode], "-q", "default"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    fetched = RQJob.fetch_many([j.id for j in jobs], connection=resources.redis)
    starts = [j.started_at for j in fetched if j and j.started_at]
    ends = [j.ended_at for j in fetched if j and j.ended_at]
    assert len(ends) == count, f"bare RQ finished {len(ends)} of {count}"
    return enqueue, (max(ends) - min(starts)).total_seconds()


def citeline_jobs(
    resources: Resources, count: int, env: dict[str, str], mode: str
) -> tuple[float, float]:
    service = resources.jobs()
    began = time.perf_counter()
    ids = [service.enqueue("bench.noop").id for _ in range(count)]
    enqueue = time.perf_counter() - began
    subprocess.run(
        [PYTHON, "-m", "citeline", "worker", "--burst", "--queues", "default", "--mode", mode],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    with resources.sessions() as session:
        rows = session.execute(
            select(Job.state, Job.started_at, Job.finished_at).where(Job.id.in_(ids))
        ).all()
    assert all(state == "finished" for state, _, _ in rows), "not every job finished"
    work = (max(r.finished_at for r in rows) - min(r.started_at for r in rows)).total_seconds()
    return enqueue, work


def start_latency(resources: Resources, env: dict[str, str], count: int, mode: str) -> list[float]:
    """Enqueue one job at a time to an idle worker; time from record creation to start."""
    worker = subprocess.Popen(
        [PYTHON, "-m", "citeline", "worker", "--queues", "default", "--mode", mode], env=env
    )
    try:
        service = resources.jobs()
        warm = service.enqueue("bench.noop")
        while service.get(warm.id).state != "finished":
            time.sleep(0.05)
        ids = []
        for _ in range(count):
            ids.append(service.enqueue("bench.noop").id)
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        jobs = [service.get(i) for i in ids]
        while time.monotonic() < deadline and any(j.state != "finished" for j in jobs):
            time.sleep(0.1)
            jobs = [service.get(i) for i in ids]
        return [(j.started_at - j.created_at).total_seconds() for j in jobs if j.started_at]
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency-jobs", type=int, default=100)
    args = parser.parse_args()
    n = args.jobs
    print(f"{n} no-op jobs per run, one burst worker, embedded Valkey and PostgreSQL")
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(
            settings, endpoints.database_url, endpoints.redis_url, job_kinds=BENCH_KINDS
        )
        env = child_env(settings)
        try:
            for mode in ("fork", "inprocess"):
                resources.redis.flushdb()
                bare_enqueue, bare_work = bare_rq(resources, n, env, mode)
                resources.redis.flushdb()
                ours_enqueue, ours_work = citeline_jobs(resources, n, env, mode)
                bare_rate = n / (bare_enqueue + bare_work)
                ours_rate = n / (ours_enqueue + ours_work)
                print(
                    f"[{mode}] bare RQ ({RQ_CLASS[mode]}): enqueue {n / bare_enqueue:7.1f}/s  work {n / bare_work:6.1f}/s  end to end {bare_rate:6.1f}/s"
                )
                print(
                    f"[{mode}] citeline:                enqueue {n / ours_enqueue:7.1f}/s  work {n / ours_work:6.1f}/s  end to end {ours_rate:6.1f}/s"
                )
                print(
                    f"[{mode}] ratio citeline/bare: end to end {ours_rate / bare_rate:.2f}, work only {bare_work / ours_work:.2f}"
                )
            for mode in ("fork", "inprocess"):
                latencies = start_latency(resources, env, args.latency_jobs, mode)
                print(f"[{mode}] enqueue-to-start latency: {summary(latencies)}")
        finally:
            resources.close()


if __name__ == "__main__":
    main()
