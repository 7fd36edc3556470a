"""Submitting, reading and cancelling jobs: what the API and the CLI call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from opentelemetry.trace import SpanKind
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from sqlalchemy import Executable, String, bindparam, case, func, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth.access import DEFAULT_WORKSPACE, Access, Role
from citeline.db.base import utcnow
from citeline.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from citeline.jobs.events import EVENTS, JOBS, EventLog
from citeline.jobs.lifecycle import Attempt, Lifecycle
from citeline.jobs.models import TERMINAL_STATES, Job, JobGroup, JobState
from citeline.jobs.queue import QUEUE_NAMES, rq_job_id
from citeline.jobs.registry import JobKind, JobRegistry
from citeline.observability import tracing
from citeline.observability.tracing import tracer
from citeline.settings import Settings

MAX_LIST_LIMIT = 500


def _record_statement() -> Executable:
    recorded = (
        insert(JOBS)
        .values({c.key: bindparam(f"p_job_{c.key}", type_=c.type) for c in JOBS.columns})
        .returning(JOBS.c.id, JOBS.c.created_at)
        .cte("recorded")
    )
    first = select(
        recorded.c.id,
        literal(1),
        literal("queued", String()),
        bindparam("p_event_data", type_=JSONB()),
        recorded.c.created_at,
    ).select_from(recorded)
    return insert(EVENTS).from_select(["job_id", "seq", "type", "data", "created_at"], first)


_RECORD = _record_statement()


# A child's share of its group's progress: its own while it runs, all of it once ended.
_DONE_OR_PROGRESS = case(
    (Job.state.in_([state.value for state in TERMINAL_STATES]), 1.0), else_=Job.progress
)


@dataclass(frozen=True)
class GroupView:
    id: uuid.UUID
    total: int
    ended: int
    failed: int
    stopped: int
    progress: float
    follow_up_id: uuid.UUID | None  # once recorded
    follow_up_state: str | None
    cancelled: bool


class JobService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        events: EventLog,
        lifecycle: Lifecycle,
        settings: Settings,
        registry: JobRegistry,
        access: Access | None = None,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.events = events
        self.lifecycle = lifecycle
        self.settings = settings
        self.registry = registry
        self.access = access or Access.system()

    def enqueue(
        self,
        kind: str,
        args: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
        workspace_id: str | None = None,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: int | None = None,
    ) -> Job:
        """Record a job, then put its first attempt on the queue. It belongs to the caller's
        workspace unless the system names another."""
        if not self.access.is_system:
            workspace_id = self.access.workspace_id
            owner = owner or self.access.subject
        workspace_id = workspace_id or DEFAULT_WORKSPACE
        spec = self.registry.get(kind)
        queue_name = queue or spec.queue
        if queue_name not in QUEUE_NAMES:
            raise InvalidInput(
                f"unknown queue {queue_name!r}; use one of {', '.join(QUEUE_NAMES)}", field="queue"
            )
        arguments = dict(args or {})
        try:
            json.dumps(arguments)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"job arguments must be JSON: {exc}", field="args") from exc
        with tracer.start_as_current_span(
            f"job.enqueue {kind}",
            kind=SpanKind.PRODUCER,
            attributes={"citeline.job.kind": kind, "citeline.workspace": workspace_id},
        ) as span:
            job = self._record(kind, spec, arguments, owner, workspace_id, queue_name,
                               max_attempts, timeout_seconds)  # fmt: skip
            span.set_attribute("citeline.job.id", str(job.id))
        return job

    def _record(
        self,
        kind: str,
        spec: JobKind,
        arguments: dict[str, Any],
        owner: str | None,
        workspace_id: str,
        queue_name: str,
        max_attempts: int | None,
        timeout_seconds: int | None,
    ) -> Job:
        """Write the job and its first event, then put its first attempt on the queue."""
        job_id = uuid.uuid4()
        now = utcnow()
        timeout = timeout_seconds or spec.timeout_seconds or self.settings.job_timeout_seconds
        attempts = max_attempts or spec.max_attempts or self.settings.job_max_attempts
        job = Job(
            id=job_id,
            kind=kind,
            target=spec.target,
            queue=queue_name,
            state=JobState.queued.value,
            owner=owner,
            workspace_id=workspace_id,
            args=arguments,
            progress=0.0,
            attempt=1,
            max_attempts=attempts,
            timeout_seconds=timeout,
            event_seq=1,
            created_at=now,
            enqueued_at=now,
            updated_at=now,
            trace_context=tracing.inject() or None,
        )
        # One round trip: the job and its first event (the job stays a plain, unsaved object).
        params = {f"p_job_{column.key}": getattr(job, column.key) for column in JOBS.columns}
        params["p_event_data"] = {"attempt": 1, "queue": queue_name}
        self.events.statements.run(_RECORD, params)
        try:
            self.lifecycle.push(Attempt(job_id, 1, queue_name, spec.target, timeout))
        except ServiceUnavailable as exc:
            self.events.append(
                job_id,
                "failed",
                {"attempt": 1, "reason": exc.detail},
                changes={
                    "state": JobState.failed.value,
                    "error": exc.detail,
                    "finished_at": utcnow(),
                },
                if_states=[JobState.queued],
            )
            raise
        return job

    def get(self, job_id: uuid.UUID) -> Job:
        """The job; a waiting one's progress is its children's (ended ones count as done)."""
        with self.sessions() as session:
            job = session.get(Job, job_id)
            if job is None or not self.access.sees(job.workspace_id):
                raise NotFound(f"job {job_id} not found")
            if job.state == JobState.waiting.value:
                job.progress = self._children_progress(session, job_id)
                session.expunge(job)
            return job

    def groups(self, job_id: uuid.UUID) -> list[GroupView]:
        """The groups `job_id` fanned out, with their counts, progress and follow-up."""
        self.get(job_id)
        with self.sessions() as session:
            groups = session.scalars(
                select(JobGroup).where(JobGroup.parent_id == job_id).order_by(JobGroup.created_at)
            ).all()
            views = []
            for group in groups:
                progress = session.scalar(
                    select(func.avg(_DONE_OR_PROGRESS)).where(Job.group_id == group.id)
                )
                follow_up = session.get(Job, group.follow_up_id)
                views.append(
                    GroupView(
                        group.id,
                        group.total,
                        group.ended,
                        group.failed,
                        group.stopped,
                        float(progress) if progress is not None else 1.0,
                        group.follow_up_id if follow_up is not None else None,
                        follow_up.state if follow_up is not None else None,
                        group.cancelled_at is not None,
                    )
                )
            return views

    def children(self, job_id: uuid.UUID) -> list[Job]:
        """Every job `job_id` waits or waited for: its children and follow-ups, oldest first."""
        self.get(job_id)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Job).where(Job.parent_id == job_id).order_by(Job.created_at, Job.id)
                )
            )

    def _children_progress(self, session: Session, job_id: uuid.UUID) -> float:
        progress = session.scalar(
            select(func.avg(_DONE_OR_PROGRESS)).where(
                Job.parent_id == job_id, Job.group_id.is_not(None)
            )
        )
        return float(progress) if progress is not None else 0.0

    def list(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        statement = (
            select(Job)
            .order_by(Job.created_at.desc(), Job.id)
            .limit(min(limit, MAX_LIST_LIMIT))
            .offset(offset)
        )
        if state is not None:
            statement = statement.where(Job.state == state.value)
        if kind is not None:
            statement = statement.where(Job.kind == kind)
        if not self.access.is_system:
            statement = statement.where(Job.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            return list(session.scalars(statement).all())

    def result(self, job_id: uuid.UUID) -> Any:
        job = self.get(job_id)
        if job.state != JobState.finished.value:
            raise Conflict(f"job {job_id} is {job.state}; its result exists once it is finished")
        return job.result

    def cancel(self, job_id: uuid.UUID, reason: str = "cancelled by user") -> Job:
        job = self.get(job_id)
        self.access.require(Role.member, "cancel jobs")
        if JobState(job.state).terminal:
            raise Conflict(f"job {job_id} is already {job.state}")
        try:
            stopped = self.lifecycle.stop(job_id, reason)
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"queue unavailable: {exc}") from exc
        if stopped is None:
            raise Conflict(f"job {job_id} ended before it could be cancelled")
        self._stop_rq_job(rq_job_id(job.id, job.attempt))
        return self.get(job_id)

    def _stop_rq_job(self, rq_id: str) -> None:
        """Kill the work-horse now (forking workers); in-process workers stop at the next check."""
        try:
            send_stop_job_command(self.redis, rq_id)
        except (InvalidJobOperation, NoSuchJobError):
            from rq.job import Job as RQJob

            try:
                RQJob.fetch(rq_id, connection=self.redis).cancel()
            except (NoSuchJobError, InvalidJobOperation):
                return
