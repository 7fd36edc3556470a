"""Agent tasks: scheduling overhead per task against a bare job doing the same work in the same
run, and whether priority order holds when a queue of tasks drains through two workers.

    .venv/bin/python -m benchmarks.agent_tasks [--tasks 100] [--priority-tasks 200]

Overhead: N tasks of an agent whose workflow is one tool step (the built-in knowledge-base
search, over no knowledge bases, so the step itself costs almost nothing) against N bare jobs
that run the same tool step through the same code; both queued first, then drained by two
burst workers (first start to last end). The difference per task is what the agent layer
adds: the task row, the concurrency slot, the recorded step and its events.

Priority: tasks at random priorities are queued with no worker running, then two workers
start. Reported: pairs (higher, lower priority) where the higher started first, as a share
of all such pairs (1.0 = order held), and the start rank of the last high-priority task.
"""

from __future__ import annotations

import argparse
import itertools
import random
import subprocess
import time
import uuid

from sqlalchemy import select

from benchmarks.agent_work import SAME_WORK, WORKFLOW
from benchmarks.common import PYTHON, bench_engines, child_env
from citeline.agents import AgentSpec
from citeline.agents.models import AgentTask
from citeline.auth import Access, Role
from citeline.jobs.models import Job
from citeline.resources import Resources

RANK = {"high": 0, "normal": 1, "low": 2}


def drain(env: dict[str, str], workers: int) -> None:
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "citeline", "worker", "--burst", "--mode", "inprocess"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for process in processes:
        if process.wait(1800) != 0:
            raise SystemExit(f"a worker exited with {process.returncode}")


def span(resources: Resources, job_ids: list[uuid.UUID]) -> float:
    with resources.sessions() as session:
        rows = session.execute(
            select(Job.state, Job.error, Job.started_at, Job.finished_at).where(Job.id.in_(job_ids))
        ).all()
    unfinished = [(r.state, r.error) for r in rows if r.state != "finished"]
    if unfinished or len(rows) != len(job_ids):
        raise SystemExit(f"{len(unfinished)} of {len(job_ids)} did not finish: {unfinished[:3]}")
    took: float = (
        max(r.finished_at for r in rows) - min(r.started_at for r in rows)
    ).total_seconds()
    return took


def task_jobs(resources: Resources, task_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    with resources.sessions() as session:
        found = session.execute(
            select(AgentTask.id, AgentTask.job_id).where(AgentTask.id.in_(task_ids))
        ).all()
    return [job_id for _, job_id in found if job_id is not None]


def overhead(resources: Resources, env: dict[str, str], count: int) -> None:
    agents = resources.agents(Access("bench", "default", Role.owner))
    agents.create(AgentSpec("bench-overhead", "You look things up.", workflow=WORKFLOW,
                            concurrency=2))  # fmt: skip
    jobs = resources.jobs(Access("bench", "default", Role.owner))
    bare = [jobs.enqueue(SAME_WORK.name, {"input": f"q{i}"}).id for i in range(count)]
    began = time.perf_counter()
    tasks = [agents.submit("bench-overhead", f"q{i}").task.id for i in range(count)]
    submit_s = time.perf_counter() - began
    drain(env, 2)
    bare_s = span(resources, bare)
    agent_s = span(resources, task_jobs(resources, tasks))
    print(f"{count} tasks and {count} bare jobs of the same tool step, 2 inprocess workers")
    print(f"  submit (task row + job):   {submit_s / count * 1000:7.2f} ms per task")
    print(
        f"  bare jobs:                 {bare_s / count * 1000:7.2f} ms per job   ({bare_s:.2f} s)"
    )
    print(
        f"  agent tasks:               {agent_s / count * 1000:7.2f} ms per task  ({agent_s:.2f} s)"
    )
    print(f"  overhead per task:         {(agent_s - bare_s) / count * 1000:7.2f} ms")
    print(f"  ratio agent/bare:          {agent_s / bare_s:7.2f}")


def priority_order(resources: Resources, env: dict[str, str], count: int, seed: int) -> None:
    agents = resources.agents(Access("bench", "default", Role.owner))
    agents.create(AgentSpec("bench-priority", "You look things up.", workflow=WORKFLOW,
                            concurrency=2))  # fmt: skip
    chooser = random.Random(seed)
    levels = [chooser.choice(list(RANK)) for _ in range(count)]
    tasks = [agents.submit("bench-priority", f"q{i}", level).task.id
             for i, level in enumerate(levels)]  # fmt: skip
    drain(env, 2)
    with resources.sessions() as session:
        rows = session.execute(
            select(AgentTask.priority, Job.started_at, Job.state)
            .join(Job, Job.id == AgentTask.job_id)
            .where(AgentTask.id.in_(tasks))
        ).all()
    if any(r.state != "finished" for r in rows) or len(rows) != count:
        raise SystemExit("not every priority task finished")
    ordered = sorted(rows, key=lambda r: r.started_at)
    held = total = 0
    for a, b in itertools.combinations(rows, 2):
        if RANK[a.priority] == RANK[b.priority]:
            continue
        higher, lower = (a, b) if RANK[a.priority] < RANK[b.priority] else (b, a)
        total += 1
        held += higher.started_at <= lower.started_at
    last_high = max((i for i, r in enumerate(ordered) if r.priority == "high"), default=-1)
    counts = {level: levels.count(level) for level in RANK}
    print(f"{count} tasks queued before 2 workers start ({counts})")
    print(f"  priority pairs in order:   {held}/{total} = {held / max(1, total):.4f}")
    print(
        f"  last high task started as: #{last_high + 1} of {count} (high tasks: {counts['high']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--priority-tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(
            settings, endpoints.database_url, endpoints.redis_url, job_kinds=(SAME_WORK,)
        )
        env = child_env(settings)
        try:
            resources.models().registry.ensure_defaults()
            overhead(resources, env, args.tasks)
            priority_order(resources, env, args.priority_tasks, args.seed)
        finally:
            resources.close()


if __name__ == "__main__":
    main()
