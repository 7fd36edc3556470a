"""The report API: start, list, read (with per-section status and an audit of how each was
written), follow its events, cancel, retry the sections that failed, delete, export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from citeline.api.deps import ReportServiceDep, ResourcesDep, StreamHubDep
from citeline.jobs.stream import sse_response
from citeline.reports.export import ExportFormat
from citeline.reports.models import Report, ReportSection
from citeline.reports.schemas import (
    ModelCallOut,
    ReportAudit,
    ReportCreated,
    ReportIn,
    ReportList,
    ReportOut,
    ReportSummary,
    SectionAudit,
    SectionOut,
)
from citeline.reports.service import ReportService, Started
from citeline.storage.http import download

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_INT = 2**31 - 1


def _created(started: Started) -> ReportCreated:
    report_id = started.report.id
    return ReportCreated(
        report_id=report_id,
        job_id=started.job_id,
        status_url=f"/v1/reports/{report_id}",
        events_url=f"/v1/reports/{report_id}/events",
    )


def _out(report: Report, sections: list[ReportSection]) -> ReportOut:
    ended = [s for s in sections if s.status not in ("queued", "started")]
    progress = (
        1.0
        if report.finished_at
        else (sum(1.0 if s in ended else s.progress for s in sections) / len(sections))
        if sections
        else 0.0
    )

    def took(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return round((end - start).total_seconds(), 1)

    return ReportOut(
        id=report.id,
        topic=report.topic,
        instructions=report.instructions,
        knowledge_base_ids=[uuid.UUID(kb) for kb in report.knowledge_base_ids],
        model=report.model,
        status=report.status,
        title=report.title,
        job_id=report.job_id,
        error=report.error,
        progress=round(progress, 3),
        outline=[{"title": s.title, "questions": s.questions} for s in sections],
        sections=[SectionOut.model_validate(s) for s in sections],
        document=report.document,
        closest=report.closest,
        created_at=report.created_at,
        started_at=report.started_at,
        first_section_at=report.first_section_at,
        finished_at=report.finished_at,
        timings={
            "queued_s": took(report.created_at, report.started_at),
            "first_section_s": took(report.started_at, report.first_section_at),
            "total_s": took(report.started_at, report.finished_at),
        },
    )


def _read(reports: ReportService, report_id: uuid.UUID) -> ReportOut:
    report = reports.get(report_id)
    return _out(report, reports.sections(report_id))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_report(body: ReportIn, reports: ReportServiceDep) -> ReportCreated:
    """Plan a report on a topic from one or more knowledge bases, research each section on
    the queue, and assemble it with every sentence cited. Follow it on `events_url`."""
    return _created(
        reports.start(
            body.topic,
            body.knowledge_bases,
            outline=body.outline,
            sections=body.sections,
            instructions=body.instructions,
            model=body.model,
        )
    )


@router.get("")
def list_reports(
    reports: ReportServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ReportList:
    return ReportList(
        reports=[
            ReportSummary.model_validate(r, from_attributes=True)
            for r in reports.all(limit, offset)
        ]
    )


@router.get("/{report_id}")
def get_report(report_id: uuid.UUID, reports: ReportServiceDep) -> ReportOut:
    return _read(reports, report_id)


@router.get("/{report_id}/audit")
def audit_report(report_id: uuid.UUID, reports: ReportServiceDep) -> ReportAudit:
    """Per section: every passage it retrieved, the model's draft, what was dropped, and every
    model call with its tokens and latency."""
    sections = reports.sections(report_id)
    return ReportAudit(
        report_id=report_id,
        sections=[
            SectionAudit.model_validate(
                {
                    **SectionOut.model_validate(s).model_dump(),
                    "draft": s.draft,
                    "passages": s.passages,
                    "model_calls": [ModelCallOut.model_validate(c) for c in s.model_calls],
                }
            )
            for s in sections
        ],
    )


@router.get(
    "/{report_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def report_events(
    report_id: uuid.UUID,
    reports: ReportServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
) -> StreamingResponse:
    """The current run's events (outline, each section's start and end, the assembly, then
    its end) as Server-Sent Events; reconnect with `Last-Event-ID`. A retry is a new run."""
    report = reports.get(report_id)
    start = last_event_id if last_event_id is not None else (after or 0)
    assert report.job_id is not None
    return sse_response(
        report.job_id,
        start,
        events=resources.events,
        hub=hub,
        headers={"X-Job-Id": str(report.job_id)},
    )


@router.post("/{report_id}/cancel", responses={409: {"description": "it already ended"}})
def cancel_report(report_id: uuid.UUID, reports: ReportServiceDep) -> ReportOut:
    reports.cancel(report_id)
    return _read(reports, report_id)


@router.post(
    "/{report_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "running, or nothing to retry"}},
)
def retry_report(report_id: uuid.UUID, reports: ReportServiceDep) -> ReportCreated:
    """Run again only the sections that failed, were stopped or found nothing."""
    return _created(reports.retry(report_id))


@router.delete("/{report_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_report(report_id: uuid.UUID, reports: ReportServiceDep) -> Response:
    reports.delete(report_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{report_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        409: {"description": "not assembled yet, or a citation could not be kept"},
    },
)
def export_report(
    report_id: uuid.UUID,
    reports: ReportServiceDep,
    format: Annotated[ExportFormat, Query(description="md, html, pdf or docx")] = ExportFormat.md,
) -> StreamingResponse:
    """The report as Markdown, HTML, PDF or DOCX, every citation a numbered link to its
    reference; written once to export storage and served from there."""
    exported = reports.export(report_id, format)
    return download(exported.stream, exported.media_type, exported.filename)
