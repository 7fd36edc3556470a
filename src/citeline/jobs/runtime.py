"""The function RQ runs for every Citeline job: it moves the job record through its states
around the registered job function, with a heartbeat that tells the reaper the worker lives."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from opentelemetry.trace import SpanKind, Status, StatusCode
from rq.timeouts import JobTimeoutException
from sqlalchemy.orm import Session, sessionmaker

from citeline.errors import (
    CitelineError,
    ClientError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    QuotaExceeded,
    ServiceUnavailable,
    UpstreamError,
)
from citeline.jobs.context import JobCancelled, JobContext
from citeline.jobs.events import EventLog, run_pipeline
from citeline.jobs.fanout import Child, FailureRule, FollowUp
from citeline.jobs.heartbeat import Heartbeat
from citeline.jobs.lifecycle import Lifecycle, Started
from citeline.jobs.metrics import record_job_outcome
from citeline.jobs.queue import alive_key
from citeline.jobs.registry import JobRegistry, resolve
from citeline.observability import tracing
from citeline.observability.logs import job_id_var
from citeline.observability.tracing import tracer
from citeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRuntime:
    """What a worker process runs jobs with: the job layer's own connections, and `services`,
    the object the composition root built for job functions (opaque to this layer)."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    events: EventLog
    lifecycle: Lifecycle
    registry: JobRegistry
    services: object

    def fan_out(
        self,
        context: JobContext[Any],
        children: Sequence[Child],
        then: FollowUp,
        on_failure: FailureRule,
    ) -> uuid.UUID:
        return self.lifecycle.fan_out(
            self.settings,
            parent_id=context.job_id,
            attempt=context.attempt,
            workspace_id=context.workspace_id,
            owner=context.owner,
            children=children,
            then=then,
            on_failure=on_failure,
        )


_runtime: JobRuntime | None = None


def configure(runtime: JobRuntime) -> None:
    """Called once by a worker process before it takes jobs."""
    global _runtime
    _runtime = runtime


def current_runtime() -> JobRuntime:
    if _runtime is None:
        raise ConfigurationError("this process is not a configured Citeline worker")
    return _runtime


def run_job(job_id: str, attempt: int, target: str) -> None:
    """RQ's entry point for attempt `attempt` of the Citeline job `job_id`."""
    runtime = current_runtime()
    job_uuid = uuid.UUID(job_id)
    token = job_id_var.set(job_id)
    try:
        _run(runtime, job_uuid, attempt, target)
    finally:
        job_id_var.reset(token)
        tracing.flush_if_forked()


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


_BY_STATUS: dict[int, type[ClientError]] = {
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: QuotaExceeded,
}


def error_from_event(ended: str, data: dict[str, Any]) -> CitelineError:
    """The domain error a failed or stopped job ended with, from its terminal event, so an
    API that waited for the job can answer as if it had done the work itself."""
    if ended == "stopped":
        return Conflict(f"the job was stopped: {data.get('reason') or 'cancelled'}")
    error = data.get("error") or {}
    detail = str(error.get("detail") or data.get("reason") or "the job failed")
    status = int(error.get("status") or 502)
    if error.get("provider"):
        return ProviderError(
            detail,
            provider=str(error["provider"]),
            retryable=bool(error.get("retryable")),
            status=status,
        )
    if status == 422:
        return InvalidInput(detail, field=error.get("field"))
    if status in _BY_STATUS:
        return _BY_STATUS[status](detail)
    if status == 503:
        return ServiceUnavailable(detail)
    return UpstreamError(detail)


def _run(runtime: JobRuntime, job_id: uuid.UUID, attempt: int, target: str) -> None:
    job = runtime.lifecycle.start(job_id, attempt)
    if job is None:
        log.info("attempt skipped: job was cancelled or superseded", extra={"attempt": attempt})
        return
    # The started event's mirror and the first heartbeat in one round trip.
    pipe = runtime.redis.pipeline(transaction=False)
    runtime.events.publish(job.event, pipe)
    pipe.set(alive_key(job_id), attempt, px=int(runtime.settings.job_lost_after_seconds * 1000))
    run_pipeline(pipe, f"start of job {job_id}")
    with tracer.start_as_current_span(
        f"job.run {job.kind}",
        context=tracing.extract(job.trace_context),
        kind=SpanKind.CONSUMER,
        attributes={
            "citeline.job.id": str(job_id),
            "citeline.job.kind": job.kind,
            "citeline.job.attempt": attempt,
            "citeline.workspace": job.workspace_id or "",
            "enduser.id": job.owner or "system",
        },
    ) as span:
        outcome = _attempt(runtime, job_id, job, attempt, target)
        span.set_attribute("citeline.job.outcome", outcome)
        if outcome == "failed":
            span.set_status(Status(StatusCode.ERROR, outcome))


def _attempt(
    runtime: JobRuntime, job_id: uuid.UUID, job: Started, attempt: int, target: str
) -> str:
    """Run the job function around its heartbeat; the outcome, as the metrics count it."""
    settings = runtime.settings
    began = time.monotonic()
    outcome = "failed"
    lifecycle = runtime.lifecycle
    kind, max_attempts = job.kind, job.max_attempts
    with Heartbeat(
        runtime.redis,
        job_id,
        attempt,
        settings.job_heartbeat_seconds,
        settings.job_lost_after_seconds,
        beat_now=False,
    ) as heartbeat:
        context = JobContext(
            job_id=job_id,
            kind=kind,
            attempt=attempt,
            max_attempts=max_attempts,
            args=job.args,
            owner=job.owner,
            events=runtime.events,
            connection=runtime.redis,
            workspace_id=job.workspace_id,
            sessions=runtime.sessions,
            settings=settings,
            services=runtime.services,
            heartbeat=heartbeat,
            parent_id=job.parent_id,
            fan_out=runtime.fan_out,
            resume=runtime.lifecycle.resume,
        )
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
            if context.paused is not None:
                # Suspended or deferred: a later attempt runs it (Lifecycle.resume, the reaper).
                pipe = runtime.redis.pipeline(transaction=False)
                record_job_outcome(pipe, kind, context.paused, time.monotonic() - began)
                run_pipeline(pipe, f"metrics of job {job_id}")
                return context.paused
            if context.waiting_on is not None:
                # It fanned out: it ends when its follow-up does (jobs.fanout).
                pipe = runtime.redis.pipeline(transaction=False)
                record_job_outcome(pipe, kind, "waiting", time.monotonic() - began)
                run_pipeline(pipe, f"metrics of job {job_id}")
                return "waiting"
            # The finished event's mirror and the metrics in one round trip.
            pipe = runtime.redis.pipeline(transaction=False)
            finished = lifecycle.finish(job_id, attempt, result, pipe)
            outcome = "finished" if finished is not None else "stopped"
            record_job_outcome(pipe, kind, outcome, time.monotonic() - began)
            run_pipeline(pipe, f"end of job {job_id}")
            return outcome
    pipe = runtime.redis.pipeline(transaction=False)
    record_job_outcome(pipe, kind, outcome, time.monotonic() - began)
    run_pipeline(pipe, f"metrics of job {job_id}")
    return outcome
