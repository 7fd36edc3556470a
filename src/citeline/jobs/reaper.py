"""Keeps jobs moving when processes die: retries or fails attempts whose worker stopped
beating, queues retries whose backoff has passed, resumes suspended jobs whose time to wait
ran out, and re-queues jobs the queue has lost."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.utils import as_text
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.errors import ServiceUnavailable
from citeline.jobs.events import EventLog
from citeline.jobs.lifecycle import Attempt, Lifecycle
from citeline.jobs.models import ACTIVE_STATES, Job, JobState
from citeline.jobs.queue import REAPER_LOCK_KEY, alive_key, queue, rq_job_id
from citeline.settings import Settings

log = logging.getLogger(__name__)

BATCH = 200
UNLISTED = "queued on no queue"


@dataclass
class Sweep:
    lost: list[uuid.UUID] = field(default_factory=list)
    overdue: list[uuid.UUID] = field(default_factory=list)
    requeued: list[uuid.UUID] = field(default_factory=list)
    unblocked: list[uuid.UUID] = field(default_factory=list)  # waiting jobs ended late
    resumed: list[uuid.UUID] = field(default_factory=list)  # suspended jobs past their time


class Reaper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        events: EventLog,
        lifecycle: Lifecycle,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.events = events
        self.lifecycle = lifecycle
        self.settings = settings
        self.token = uuid.uuid4().hex
        # Copies found `queued` but on no queue at the last sweep: a worker may have popped
        # one a moment ago and not yet marked it started, so it is pushed again only if it is
        # still so at the next sweep.
        self.unlisted: set[str] = set()

    def sweep(self) -> Sweep | None:
        """One pass, if no other process holds the reaper lock; None when it was skipped."""
        lock_ms = int(max(self.settings.job_reaper_interval_seconds * 5, 10) * 1000)
        if not self.redis.set(REAPER_LOCK_KEY, self.token, nx=True, px=lock_ms):
            return None
        try:
            report = Sweep()
            self._reap_started(report)
            self._queue_due(report)
            self._resume_due(report)
            self._requeue_lost(report)
            self._end_waiting(report)
            return report
        finally:
            if self.redis.get(REAPER_LOCK_KEY) == self.token.encode():
                self.redis.delete(REAPER_LOCK_KEY)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.job_reaper_interval_seconds):
            try:
                self.sweep()
            except (redis.RedisError, OperationalError, ServiceUnavailable) as exc:
                log.warning("reaper sweep skipped", extra={"error": str(exc)})

    def _reap_started(self, report: Sweep) -> None:
        now = utcnow()
        grace = timedelta(seconds=self.settings.job_lost_after_seconds)
        with self.sessions() as session:
            rows = session.execute(
                select(Job.id, Job.attempt, Job.max_attempts, Job.started_at, Job.timeout_seconds)
                .where(Job.state == JobState.started.value, Job.started_at < now - grace)
                .limit(BATCH)
            ).all()
        for job_id, attempt, max_attempts, started_at, timeout in rows:
            if not self.redis.exists(alive_key(job_id)):
                reason = (
                    f"the worker running attempt {attempt} stopped responding "
                    f"(killed or crashed) for over {grace.total_seconds():.0f}s"
                )
                if self.lifecycle.fail_or_retry(job_id, attempt, max_attempts, reason, retry=True):
                    report.lost.append(job_id)
            elif started_at is not None and started_at + timedelta(seconds=timeout) + grace < now:
                reason = f"timed out: still running {timeout}s after it started"
                if self.lifecycle.fail_or_retry(job_id, attempt, max_attempts, reason, retry=False):
                    report.overdue.append(job_id)

    def _queue_due(self, report: Sweep) -> None:
        now = utcnow()
        with self.sessions() as session:
            rows = session.execute(
                select(Job.id, Job.attempt, Job.queue, Job.target, Job.timeout_seconds)
                .where(Job.state == JobState.scheduled.value, Job.run_at <= now)
                .order_by(Job.run_at)
                .limit(BATCH)
            ).all()
        for job_id, attempt, queue_name, target, timeout in rows:
            queued = self.events.append(
                job_id,
                "queued",
                {"attempt": attempt, "queue": queue_name},
                changes={"state": JobState.queued.value, "enqueued_at": now},
                if_states=[JobState.scheduled],
                if_attempt=attempt,
            )
            if queued is not None:
                self.lifecycle.push(Attempt(job_id, attempt, queue_name, target, timeout))
                report.requeued.append(job_id)

    def _resume_due(self, report: Sweep) -> None:
        """Suspended jobs whose `until` has passed (`JobContext.suspend`): queue them again;
        the job function decides what the lapse means (an approval that timed out, say)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Job.id)
                .where(Job.state == JobState.suspended.value, Job.run_at <= utcnow())
                .order_by(Job.run_at)
                .limit(BATCH)
            ).all()
        for job_id in rows:
            if self.lifecycle.resume(job_id, {"reason": "its time to wait ran out"}):
                report.resumed.append(job_id)

    def _requeue_lost(self, report: Sweep) -> None:
        """Queued in the database but not held by RQ to run (a Redis that lost its data, a push
        that failed after the record was written, a worker that died or failed as it took the
        attempt): push the attempt again. `Lifecycle.start` runs it once however often it is
        pushed."""
        grace = timedelta(seconds=self.settings.job_lost_after_seconds)
        cutoff = utcnow() - grace
        with self.sessions() as session:
            rows = session.execute(
                select(Job.id, Job.attempt, Job.queue, Job.target, Job.timeout_seconds)
                .where(Job.state == JobState.queued.value, Job.enqueued_at < cutoff)
                .order_by(Job.enqueued_at)
                .limit(BATCH)
            ).all()
        listed: dict[str, set[str]] = {}  # each queue's list, read once a sweep if needed
        unlisted, self.unlisted = self.unlisted, set()
        for job_id, attempt, queue_name, target, timeout in rows:
            rq_id = rq_job_id(job_id, attempt)
            lost = self._lost_copy(rq_id, queue_name, grace, listed)
            if lost is None:
                continue
            if lost == UNLISTED and rq_id not in unlisted:
                self.unlisted.add(rq_id)
                continue
            log.warning(
                "re-queueing a job the queue had lost", extra={"job": str(job_id), "rq": lost}
            )
            self.lifecycle.push(Attempt(job_id, attempt, queue_name, target, timeout))
            report.requeued.append(job_id)

    def _lost_copy(
        self, rq_id: str, queue_name: str, grace: timedelta, listed: dict[str, set[str]]
    ) -> str | None:
        """What became of RQ's copy of this attempt if RQ will not run it; None while it will:
        the copy waits on its queue's list, or a worker took it less than `grace` ago (a worker
        that runs it records the start within milliseconds).

        RQ's status alone is not enough: `queued` stays on a copy that a worker popped and
        then lost (it died, or failed, between the pop and marking the job started), which
        nothing ever runs; `started` stays on a copy whose worker died before the attempt
        started, until RQ's own clean-up fails it (every 10 minutes). One that RQ failed (its
        worker lost PostgreSQL or Redis at the start) never runs again by itself either."""
        try:
            job = RQJob.fetch(rq_id, connection=self.redis)
        except NoSuchJobError:
            return "missing"
        status = job.get_status(refresh=False)
        if status == JobStatus.QUEUED:
            if queue_name not in listed:
                key = queue(queue_name, self.redis).key
                listed[queue_name] = {as_text(i) for i in self.redis.lrange(key, 0, -1)}
            return None if rq_id in listed[queue_name] else UNLISTED
        if status == JobStatus.STARTED:
            if job.started_at is not None and utcnow() - job.started_at < grace:
                return None
            return "started by a worker that never started it"
        if status in (JobStatus.DEFERRED, JobStatus.SCHEDULED):
            return None
        return str(status.value)  # failed, finished, stopped, canceled

    def _end_waiting(self, report: Sweep) -> None:
        """A waiting job whose follow-up ended, but which did not end with it (the process
        that ended the follow-up died in between): end it now as the follow-up did. One whose
        groups were all cancelled, with nothing left running, is stopped."""
        cutoff = utcnow() - timedelta(seconds=self.settings.job_lost_after_seconds)
        parent = Job.__table__.alias("parent")
        active = [state.value for state in ACTIVE_STATES]
        with self.sessions() as session:
            rows = session.execute(
                select(parent.c.id)
                .where(parent.c.state == JobState.waiting.value, parent.c.updated_at < cutoff)
                .where(
                    ~select(Job.id)
                    .where(Job.parent_id == parent.c.id, Job.state.in_(active))
                    .exists()
                )
                .limit(BATCH)
            ).all()
            follow_ups = {
                parent_id: session.scalars(
                    select(Job.id)
                    .where(Job.parent_id == parent_id, Job.group_id.is_(None))
                    .order_by(Job.created_at.desc())
                    .limit(1)
                ).first()
                for (parent_id,) in rows
            }
        for parent_id, follow_up in follow_ups.items():
            if follow_up is not None:
                ended = self.lifecycle.end_waiting_as(parent_id, follow_up)
            else:
                ended = self.lifecycle.stop(parent_id, "its children were cancelled")
            if ended is not None:
                log.warning("ended a job left waiting", extra={"job": str(parent_id)})
                report.unblocked.append(parent_id)
