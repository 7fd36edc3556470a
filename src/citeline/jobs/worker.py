"""A Citeline worker process: an RQ worker plus the reaper that keeps abandoned jobs moving."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from importlib import import_module

from rq import Queue, Worker
from rq.job import Job

from citeline.jobs.queue import QUEUE_NAMES
from citeline.jobs.runtime import configure, run_job
from citeline.resources import Resources
from citeline.settings import Settings

log = logging.getLogger(__name__)

RUN_JOB = f"{run_job.__module__}.{run_job.__qualname__}"

WORKER_TTL_SECONDS = 30


class CitelineWorker(Worker):
    """RQ's forking worker, importing each job's module in the parent before it forks, so a
    work-horse starts with the code loaded instead of importing it for every job."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        if job.func_name == RUN_JOB and len(job.args) == 3:
            module = str(job.args[2]).partition(":")[0]
            if module not in sys.modules:
                try:
                    import_module(module)
                except ImportError:
                    log.exception("cannot import job module", extra={"module": module})
        super().execute_job(job, queue)


def run_worker(
    settings: Settings,
    database_url: str,
    redis_url: str,
    queues: Sequence[str] = QUEUE_NAMES,
    *,
    burst: bool = False,
    name: str | None = None,
) -> bool:
    """Take jobs from `queues` (in priority order) until stopped; True if any job ran."""
    unknown = [q for q in queues if q not in QUEUE_NAMES]
    if unknown:
        raise ValueError(f"unknown queues {unknown}; queues are {', '.join(QUEUE_NAMES)}")
    # The blocking dequeue must not hit a socket timeout, so this client blocks freely.
    resources = Resources.connect(
        settings, database_url, redis_url, redis_timeout=None, pool_size=2
    )
    configure(resources)
    # Each job runs in a forked work-horse: it must open its own database connections.
    os.register_at_fork(after_in_child=lambda: resources.engine.dispose(close=False))
    stop = threading.Event()
    reaper = threading.Thread(
        target=resources.reaper().run, args=(stop,), name="citeline-reaper", daemon=True
    )
    reaper.start()
    worker = CitelineWorker(
        list(queues), connection=resources.redis, name=name, worker_ttl=WORKER_TTL_SECONDS
    )
    try:
        return bool(worker.work(burst=burst, logging_level=settings.log_level))
    finally:
        stop.set()
        reaper.join(timeout=5)
        resources.close()
