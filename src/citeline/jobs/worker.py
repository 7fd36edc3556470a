"""A Citeline worker process: an RQ worker plus the reaper that keeps abandoned jobs moving."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from importlib import import_module
from types import FrameType

import redis
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.job import Job

from citeline.jobs.handback import RUN_JOB, HandBack
from citeline.jobs.queue import QUEUE_NAMES, WORKER_TTL_SECONDS
from citeline.jobs.reaper import Reaper
from citeline.jobs.runtime import JobRuntime, configure

log = logging.getLogger(__name__)


class WorkerMode(StrEnum):
    fork = "fork"  # each job in a forked work-horse: isolated, fresh connections per job
    inprocess = "inprocess"  # jobs in the worker itself: warm connections and loaded models


class StopsGracefully:
    """A SIGTERM starts the hand-back grace period as well as RQ's warm shutdown."""

    hand_back: HandBack | None = None
    stopping = False  # a stop was asked for (RQ records it only when a job is running)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.hand_back is not None:
            self.hand_back.arm()
        super().request_stop(signum, frame)  # type: ignore[misc]


class ForkingWorker(StopsGracefully, Worker):
    """RQ's forking worker, importing each job's module in the parent before it forks, so a
    work-horse starts with the code loaded instead of importing it for every job."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        _preload(job)
        super().execute_job(job, queue)


class InProcessWorker(StopsGracefully, SimpleWorker):
    """RQ's non-forking worker. Timeouts still hold (SIGALRM in the main thread); cancelling
    relies on the job reaching `check_cancelled`, `emit` or `progress`."""


def _preload(job: Job) -> None:
    if job.func_name == RUN_JOB and len(job.args) == 3:
        module = str(job.args[2]).partition(":")[0]
        if module not in sys.modules:
            try:
                import_module(module)
            except ImportError:
                log.exception("cannot import job module", extra={"module": module})


def run_worker(
    runtime: JobRuntime,
    queues: Sequence[str] = QUEUE_NAMES,
    *,
    burst: bool = False,
    name: str | None = None,
    mode: WorkerMode = WorkerMode.inprocess,
    after_fork: Callable[[], None] | None = None,
) -> bool:
    """Take jobs from `queues` (in priority order) until stopped; True if any job ran.

    `runtime` should use a Redis client without a socket timeout (the dequeue blocks);
    `after_fork` runs in each forked work-horse (to drop the parent's database connections)."""
    unknown = [q for q in queues if q not in QUEUE_NAMES]
    if unknown:
        raise ValueError(f"unknown queues {unknown}; queues are {', '.join(QUEUE_NAMES)}")
    configure(runtime)
    if mode is WorkerMode.fork and after_fork is not None:
        os.register_at_fork(after_in_child=after_fork)
    stop = threading.Event()
    reaper = Reaper(
        runtime.sessions, runtime.redis, runtime.events, runtime.lifecycle, runtime.settings
    )
    watcher = threading.Thread(target=reaper.run, args=(stop,), name="citeline-reaper", daemon=True)
    watcher.start()
    worker_class = ForkingWorker if mode is WorkerMode.fork else InProcessWorker
    ran = False
    try:
        while True:
            worker = worker_class(
                list(queues), connection=runtime.redis, name=name, worker_ttl=WORKER_TTL_SECONDS
            )
            worker.hand_back = HandBack(worker, runtime, runtime.settings.worker_stop_seconds)
            try:
                ran = (
                    bool(worker.work(burst=burst, logging_level=runtime.settings.log_level)) or ran
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("worker lost Redis as it stopped", extra={"error": str(exc)})
            if burst or worker.stopping:
                return ran
            # RQ's loop quits on an error outside its dequeue (Redis restarting, say): wait
            # for Redis and take jobs again, as a new worker, rather than end the process.
            log.warning("worker loop quit without a stop request; starting it again")
            _wait_for_redis(runtime.redis)
            name = None  # the old name may still be registered until its TTL lapses
    except StopRequested:
        return ran
    finally:
        stop.set()
        watcher.join(timeout=5)


def _wait_for_redis(connection: redis.Redis, longest: float = 5.0) -> None:
    delay = 0.2
    while True:
        try:
            connection.ping()
            return
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(delay)
            delay = min(longest, delay * 2)
