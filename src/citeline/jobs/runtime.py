"""The function RQ runs for every Citeline job: it moves the job record through its states
around the registered job function, with a heartbeat that tells the reaper the worker lives."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis
from rq.timeouts import JobTimeoutException

from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import (
    CitelineError,
    ClientError,
    ConfigurationError,
    InvalidInput,
    ProviderError,
)
from citeline.jobs.context import JobCancelled, JobContext
from citeline.jobs.models import Job, JobState
from citeline.jobs.queue import alive_key
from citeline.jobs.registry import resolve
from citeline.observability.logs import job_id_var
from citeline.observability.metrics import record_job_outcome

if TYPE_CHECKING:
    from citeline.resources import Resources

log = logging.getLogger(__name__)


_resources: Resources | None = None


def configure(resources: Resources) -> None:
    """Called once by a worker process before it takes jobs; job code reaches them here."""
    global _resources
    _resources = resources


def worker_resources() -> Resources:
    if _resources is None:
        raise ConfigurationError("this process is not a configured Citeline worker")
    return _resources


_heartbeat: Heartbeat | None = None


@contextmanager
def holding_lease(seconds: float) -> Iterator[None]:
    """Around a call that keeps the GIL for long (llama.cpp loading a model holds it for
    seconds), during which the heartbeat thread cannot run: the running job, if any, stays
    alive for `seconds` instead of being taken for dead by the reaper."""
    beat = _heartbeat
    if beat is None:
        yield
        return
    beat.hold(seconds)
    try:
        yield
    finally:
        beat.release()


class Heartbeat:
    """Keeps `alive_key` fresh while a job runs; it lapses soon after the process dies."""

    def __init__(
        self, connection: redis.Redis, job_id: uuid.UUID, attempt: int, interval: float, ttl: float
    ) -> None:
        self.connection = connection
        self.key = alive_key(job_id)
        self.attempt = attempt
        self.interval = interval
        self.ttl_ms = int(ttl * 1000)
        self._hold_until = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citeline-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        global _heartbeat
        self._beat()
        self._thread.start()
        _heartbeat = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _heartbeat
        _heartbeat = None
        # The key is left to expire: the reaper only reads it for jobs still `started`.
        self._stopped.set()
        self._thread.join(timeout=self.interval + 1)

    def hold(self, seconds: float) -> None:
        """Keep the job alive for `seconds` whether or not this thread gets to beat."""
        self._hold_until = time.monotonic() + seconds
        self._beat()

    def release(self) -> None:
        self._hold_until = 0.0
        self._beat()

    def _beat(self) -> None:
        held = int((self._hold_until - time.monotonic()) * 1000)
        try:
            self.connection.set(self.key, self.attempt, px=max(self.ttl_ms, held))
        except redis.RedisError as exc:
            log.warning("heartbeat missed", extra={"error": str(exc)})

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self._beat()


def run_job(job_id: str, attempt: int, target: str) -> None:
    """RQ's entry point for attempt `attempt` of the Citeline job `job_id`."""
    resources = worker_resources()
    job_uuid = uuid.UUID(job_id)
    token = job_id_var.set(job_id)
    try:
        _run(resources, job_uuid, attempt, target)
    finally:
        job_id_var.reset(token)


def error_json(exc: CitelineError) -> dict[str, Any]:
    """A domain error as a failed event carries it, so an API can answer with its status."""
    body: dict[str, Any] = {
        "type": exc.type_slug,
        "status": exc.http_status if isinstance(exc, ProviderError) else exc.status,
        "detail": exc.detail,
        "retryable": exc.retryable,
    }
    if isinstance(exc, InvalidInput) and exc.field:
        body["field"] = exc.field
    if isinstance(exc, ProviderError):
        body["provider"] = exc.provider
    return body


def _run(resources: Resources, job_id: uuid.UUID, attempt: int, target: str) -> None:
    with unit_of_work(resources.sessions) as session:
        started = resources.events.append_in(
            session,
            job_id,
            "started",
            {"attempt": attempt},
            {"state": JobState.started.value, "started_at": utcnow(), "error": None},
            [JobState.queued, JobState.scheduled],
            attempt,
        )
        job = session.get_one(Job, job_id) if started is not None else None
    if started is None or job is None:
        log.info("attempt skipped: job was cancelled or superseded", extra={"attempt": attempt})
        return
    resources.events.publish(started)
    kind, owner, args, max_attempts = job.kind, job.owner, job.args, job.max_attempts
    workspace_id = job.workspace_id

    settings = resources.settings
    context = JobContext(
        job_id=job_id,
        kind=kind,
        attempt=attempt,
        max_attempts=max_attempts,
        args=args,
        owner=owner,
        events=resources.events,
        connection=resources.redis,
        workspace_id=workspace_id,
    )
    began = time.monotonic()
    outcome = "failed"
    lifecycle = resources.lifecycle
    with Heartbeat(
        resources.redis,
        job_id,
        attempt,
        settings.job_heartbeat_seconds,
        settings.job_lost_after_seconds,
    ):
        try:
            result = resolve(target)(context)
            json.dumps(result)
        except JobCancelled:
            outcome = "stopped"
            lifecycle.stop(job_id, "cancelled")
        except JobTimeoutException as exc:
            lifecycle.fail_or_retry(job_id, attempt, max_attempts, f"timed out: {exc}", retry=False)
        except (ClientError, ConfigurationError, ProviderError) as exc:
            # Retrying the job cannot fix these; a provider's own retries have already run.
            log.info("job failed", extra={"kind": kind, "error": str(exc)})
            lifecycle.fail_or_retry(
                job_id,
                attempt,
                max_attempts,
                f"{type(exc).__name__}: {exc}",
                retry=False,
                error=error_json(exc),
            )
        except Exception as exc:
            log.exception("job raised", extra={"kind": kind, "attempt": attempt})
            retried = lifecycle.fail_or_retry(
                job_id, attempt, max_attempts, f"{type(exc).__name__}: {exc}", retry=True
            )
            outcome = "retried" if retried is not None and retried.type == "retrying" else "failed"
        else:
            finished = lifecycle.finish(job_id, attempt, result)
            outcome = "finished" if finished is not None else "stopped"
    record_job_outcome(resources.redis, kind, outcome, time.monotonic() - began)
