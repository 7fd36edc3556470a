"""Fan-out and fan-in: a running job starts children and waits; when the last child ends,
however it ends, its follow-up job is recorded in the same statement (see `events`), runs
once, and the waiting job ends as the follow-up does.

    def plan(context):                       # a job kind of some domain
        ...
        context.fan_out(
            [Child(SECTION, {"section_id": s}) for s in sections],
            then=FollowUp(ASSEMBLE, {"report_id": report}),
        )
        return None                          # the job now waits

Children and the follow-up are ordinary jobs (retried, reaped and cancelled as any other),
with `parent_id` set; children also carry their `group_id`. A waiting job's progress is its
children's, and cancelling it stops every child and the follow-up. With `on_failure="cancel"`
the first failed child stops its siblings; with "continue" (the default) the follow-up runs
whatever happened and reads the counts (`JobService.groups`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from citeline.db.base import utcnow
from citeline.errors import InvalidInput
from citeline.jobs.events import EVENTS, JOBS
from citeline.jobs.models import JobGroup, JobState
from citeline.jobs.queue import QUEUE_NAMES
from citeline.jobs.registry import JobKind
from citeline.settings import Settings

GROUPS: Table = JobGroup.__table__  # type: ignore[assignment]

FailureRule = Literal["continue", "cancel"]


@dataclass(frozen=True)
class Child:
    kind: JobKind  # the kind itself, not its name: a worker needs no registry to fan out
    args: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None


@dataclass(frozen=True)
class FollowUp:
    kind: JobKind
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildQueued:
    job_id: uuid.UUID
    queue: str
    target: str
    timeout_seconds: int


@dataclass(frozen=True)
class Opened:
    group_id: uuid.UUID
    children: list[ChildQueued]
    follow_up_now: ChildQueued | None  # no children: the follow-up is queued at once


def open_group(
    session: Session,
    settings: Settings,
    *,
    parent_id: uuid.UUID,
    workspace_id: str | None,
    owner: str | None,
    children: Sequence[Child],
    then: FollowUp,
    on_failure: FailureRule,
) -> Opened:
    """Record a group, its children and their first events, in the caller's transaction."""
    if on_failure not in ("continue", "cancel"):
        raise InvalidInput("on_failure must be continue or cancel", field="on_failure")
    follow_spec = then.kind
    now = utcnow()
    group_id = uuid.uuid4()
    follow_up_id = uuid.uuid4()
    session.execute(
        insert(GROUPS).values(
            id=group_id,
            parent_id=parent_id,
            workspace_id=workspace_id,
            owner=owner,
            total=len(children),
            ended=0,
            failed=0,
            stopped=0,
            on_failure=on_failure,
            follow_up_id=follow_up_id,
            follow_up_kind=follow_spec.name,
            follow_up_target=follow_spec.target,
            follow_up_queue=follow_spec.queue,
            follow_up_args={**then.args, "group_id": str(group_id)},
            follow_up_attempts=_attempts(follow_spec, settings),
            follow_up_timeout=_timeout(follow_spec, settings),
            created_at=now,
        )
    )
    queued: list[ChildQueued] = []
    rows: list[dict[str, Any]] = []
    for child in children:
        spec = child.kind
        queue_name = child.queue or spec.queue
        if queue_name not in QUEUE_NAMES:
            raise InvalidInput(f"unknown queue {queue_name!r}", field="queue")
        job_id = uuid.uuid4()
        timeout = _timeout(spec, settings)
        rows.append(
            {
                "id": job_id,
                "kind": spec.name,
                "target": spec.target,
                "queue": queue_name,
                "state": JobState.queued.value,
                "owner": owner,
                "workspace_id": workspace_id,
                "args": dict(child.args),
                "progress": 0.0,
                "attempt": 1,
                "max_attempts": _attempts(spec, settings),
                "timeout_seconds": timeout,
                "event_seq": 1,
                "created_at": now,
                "enqueued_at": now,
                "updated_at": now,
                "parent_id": parent_id,
                "group_id": group_id,
            }
        )
        queued.append(ChildQueued(job_id, queue_name, spec.target, timeout))
    follow_up_now = None
    if not children:
        session.execute(
            insert(JOBS).values(
                id=follow_up_id, kind=follow_spec.name, target=follow_spec.target,
                queue=follow_spec.queue, state=JobState.queued.value, owner=owner,
                workspace_id=workspace_id, args={**then.args, "group_id": str(group_id)},
                progress=0.0, attempt=1, max_attempts=_attempts(follow_spec, settings),
                timeout_seconds=_timeout(follow_spec, settings), event_seq=1, created_at=now,
                enqueued_at=now, updated_at=now, parent_id=parent_id,
            )
        )  # fmt: skip
        rows_events = [_queued_event(follow_up_id, follow_spec.queue, now)]
        follow_up_now = ChildQueued(
            follow_up_id, follow_spec.queue, follow_spec.target, _timeout(follow_spec, settings)
        )
    else:
        session.execute(insert(JOBS), rows)
        rows_events = [_queued_event(c.job_id, c.queue, now) for c in queued]
    session.execute(insert(EVENTS), rows_events)
    return Opened(group_id, queued, follow_up_now)


def cancel_groups(session: Session, parent_id: uuid.UUID) -> list[uuid.UUID]:
    """Mark the parent's groups cancelled (no follow-up will be recorded); the jobs still
    active under the parent, to stop."""
    session.execute(
        update(GROUPS)
        .where(GROUPS.c.parent_id == parent_id, GROUPS.c.cancelled_at.is_(None))
        .values(cancelled_at=utcnow())
    )
    active = [state.value for state in (JobState.queued, JobState.scheduled, JobState.started,
                                         JobState.waiting, JobState.suspended)]  # fmt: skip
    return list(
        session.scalars(
            select(JOBS.c.id).where(JOBS.c.parent_id == parent_id, JOBS.c.state.in_(active))
        )
    )


def _queued_event(job_id: uuid.UUID, queue_name: str, now: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "seq": 1,
        "type": "queued",
        "data": {"attempt": 1, "queue": queue_name},
        "created_at": now,
    }


def _timeout(spec: JobKind, settings: Settings) -> int:
    return spec.timeout_seconds or settings.job_timeout_seconds


def _attempts(spec: JobKind, settings: Settings) -> int:
    return spec.max_attempts or settings.job_max_attempts
