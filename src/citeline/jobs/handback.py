"""A stopping worker's running job: it gets a grace period to end, then it is handed back.

On SIGTERM (a scale-in, a rolling update) RQ's warm shutdown takes no new job and lets the
running one finish. If it is still running after `worker_stop_seconds`, this hands it back
(the attempt is retried elsewhere, as if its worker had died, but at once rather than after
`job_lost_after_seconds`) and ends the process before the orchestrator's SIGKILL would.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable

from rq.worker.base import BaseWorker
from sqlalchemy import select

from citeline.jobs.models import Job
from citeline.jobs.runtime import JobRuntime, run_job

log = logging.getLogger(__name__)

RUN_JOB = f"{run_job.__module__}.{run_job.__qualname__}"
LINGER_SECONDS = 5.0  # how long a fork-mode worker may take to end after its horse is killed


class HandBack:
    def __init__(
        self,
        worker: BaseWorker,
        runtime: JobRuntime,
        seconds: float,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.worker = worker
        self.runtime = runtime
        self.seconds = seconds
        self.exit_process = exit_process
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start the grace period (once; later signals do not extend it)."""
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self.fire)
            self._timer.name = "citeline-hand-back"
            self._timer.daemon = True
            self._timer.start()

    def fire(self) -> None:
        handed = self.hand_back()
        if handed is not None:
            log.warning(
                "stopping worker handed its running job back",
                extra={"job": str(handed), "grace_seconds": self.seconds},
            )
        if self.worker.horse_pid:
            # Fork mode: with its horse gone, the main loop sees the stop request and ends the
            # process itself. Running Python here while the interpreter finalises crashes it
            # (SIGSEGV, seen under load), so this thread only ends a process that lingers.
            self.worker.kill_horse()
            time.sleep(LINGER_SECONDS)
        self.worker.register_death()  # type: ignore[no-untyped-call]
        self.exit_process(0)

    def hand_back(self) -> uuid.UUID | None:
        """Retry the attempt this worker is running, if any; the job it was."""
        job = self.worker.get_current_job()
        if job is None or job.func_name != RUN_JOB:
            return None
        job_id, attempt = uuid.UUID(str(job.args[0])), int(job.args[1])
        with self.runtime.sessions() as session:
            max_attempts = session.scalar(select(Job.max_attempts).where(Job.id == job_id))
        if max_attempts is None:
            return None
        reason = (
            f"its worker was stopped (scale-in or upgrade) and attempt {attempt} did not end "
            f"within {self.seconds:g}s"
        )
        self.runtime.lifecycle.fail_or_retry(job_id, attempt, max_attempts, reason, retry=True)
        return job_id
