"""Job API: list, read, result, cancel and the live event stream."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from citeline.api.deps import JobServiceDep, ResourcesDep, StreamHubDep, SubjectLabelsDep
from citeline.jobs.models import JobState
from citeline.jobs.schemas import ChildrenOut, GroupOut, JobList, JobOut, JobResult
from citeline.jobs.stream import sse_response

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

MAX_INT = 2**31 - 1  # event sequence numbers and offsets are PostgreSQL integers


@router.get("")
def list_jobs(
    jobs: JobServiceDep,
    labels: SubjectLabelsDep,
    state: JobState | None = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> JobList:
    found = jobs.list(state=state, kind=kind, limit=limit, offset=offset)
    names = labels({job.owner for job in found if job.owner})
    return JobList(jobs=[JobOut.of(job, names) for job in found])


@router.get("/{job_id}")
def get_job(job_id: uuid.UUID, jobs: JobServiceDep, labels: SubjectLabelsDep) -> JobOut:
    job = jobs.get(job_id)
    return JobOut.of(job, labels({job.owner} if job.owner else set()))


@router.get("/{job_id}/children")
def job_children(job_id: uuid.UUID, jobs: JobServiceDep, labels: SubjectLabelsDep) -> ChildrenOut:
    """The children a job fanned out and their follow-ups, with each group's counts."""
    groups = [GroupOut.model_validate(group) for group in jobs.groups(job_id)]
    children = jobs.children(job_id)
    names = labels({job.owner for job in children if job.owner})
    return ChildrenOut(groups=groups, jobs=[JobOut.of(job, names) for job in children])


@router.get("/{job_id}/result", responses={409: {"description": "the job has not finished"}})
def get_result(job_id: uuid.UUID, jobs: JobServiceDep) -> JobResult:
    return JobResult(job_id=job_id, result=jobs.result(job_id))


@router.post("/{job_id}/cancel", responses={409: {"description": "the job already ended"}})
def cancel_job(job_id: uuid.UUID, jobs: JobServiceDep, labels: SubjectLabelsDep) -> JobOut:
    job = jobs.cancel(job_id)
    return JobOut.of(job, labels({job.owner} if job.owner else set()))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream_events(
    job_id: uuid.UUID,
    jobs: JobServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="same as Last-Event-ID")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events: each event's `id` is its sequence number; reconnect with
    `Last-Event-ID` to receive exactly the events after it."""
    jobs.get(job_id)
    start = last_event_id if last_event_id is not None else (after or 0)
    return sse_response(job_id, start, events=resources.events, hub=hub)
