"""Starting, reading, cancelling, retrying, deleting and exporting reports, for a caller."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, Role, audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.jobs.models import JobState
from citeline.jobs.service import JobService
from citeline.knowledge import KnowledgeService
from citeline.reports.assembly import from_json
from citeline.reports.export import FORMATS, ExportFormat, render
from citeline.reports.jobs import PLAN, RERUN
from citeline.reports.models import (
    Report,
    ReportExport,
    ReportSection,
    ReportStatus,
    SectionStatus,
)
from citeline.reports.outline import MAX_SECTIONS, check_titles
from citeline.settings import Settings
from citeline.storage import ObjectStore, ObjectStream

MAX_LIST = 200
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Started:
    report: Report
    job_id: uuid.UUID


@dataclass(frozen=True)
class ExportFile:
    stream: ObjectStream
    media_type: str
    filename: str


class ReportService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: JobService,
        knowledge: KnowledgeService,
        store: ObjectStore,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.jobs = jobs
        self.knowledge = knowledge
        self.store = store
        self.settings = settings
        self.access: Access = knowledge.access

    def start(
        self,
        topic: str,
        knowledge_bases: list[str],
        *,
        outline: list[str] | None = None,
        sections: int = 5,
        instructions: str = "",
        model: str = "report",
    ) -> Started:
        """Check the request, record the report and queue its plan."""
        self.access.require(Role.member, "start reports")
        topic = " ".join(topic.split())
        if not topic:
            raise InvalidInput("the topic is empty", field="topic")
        if not 1 <= sections <= MAX_SECTIONS:
            raise InvalidInput(f"sections must be 1 to {MAX_SECTIONS}", field="sections")
        titles = check_titles(outline) if outline is not None else None
        bases = []
        for ref in dict.fromkeys(knowledge_bases):
            kb = self.knowledge.get(ref)
            if kb.chunk_count == 0:
                raise Conflict(f"knowledge base {kb.name!r} has no indexed documents yet")
            bases.append(str(kb.id))
        if not bases:
            raise InvalidInput("name at least one knowledge base", field="knowledge_bases")
        report = Report(
            id=uuid.uuid4(),
            workspace_id=self.access.owned_workspace(),
            owner=None if self.access.is_system else self.access.subject,
            topic=topic,
            instructions=instructions.strip(),
            knowledge_base_ids=bases,
            model=model,
            target_sections=len(titles) if titles else sections,
            fixed_outline=titles is not None,
            status=ReportStatus.queued.value,
            version=0,
        )
        with unit_of_work(self.sessions) as session:
            session.add(report)
            session.flush()
            session.expunge(report)
        args: dict[str, Any] = {"report_id": str(report.id)}
        if titles:
            args["outline"] = titles
        job = self.jobs.enqueue(PLAN.name, args, workspace_id=report.workspace_id)
        with unit_of_work(self.sessions) as session:
            session.get_one(Report, report.id).job_id = job.id
        report.job_id = job.id
        return Started(report, job.id)

    def all(self, limit: int = 50, offset: int = 0) -> list[Report]:
        statement = (
            select(Report)
            .order_by(Report.created_at.desc(), Report.id)
            .limit(min(limit, MAX_LIST))
            .offset(offset)
        )
        if not self.access.is_system:
            statement = statement.where(Report.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            return list(session.scalars(statement))

    def get(self, report_id: uuid.UUID) -> Report:
        """The report, its status brought in line with its run's job (a run that failed or
        was stopped outside the report's own code)."""
        with self.sessions() as session:
            report = session.get(Report, report_id)
            if report is None or not self.access.sees(report.workspace_id):
                raise NotFound(f"report {report_id} not found")
            session.expunge(report)
        if not ReportStatus(report.status).ended and report.job_id is not None:
            job = self.jobs.get(report.job_id)
            if job.state in (JobState.failed.value, JobState.stopped.value):
                with unit_of_work(self.sessions) as session:
                    row = session.get_one(Report, report_id, with_for_update=True)
                    if not ReportStatus(row.status).ended:
                        row.status = job.state
                        row.error = row.error or job.error
                        row.finished_at = row.finished_at or job.finished_at or utcnow()
                    session.flush()
                    session.expunge(row)
                    report = row
        return report

    def sections(self, report_id: uuid.UUID) -> list[ReportSection]:
        self.get(report_id)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ReportSection)
                    .where(ReportSection.report_id == report_id)
                    .order_by(ReportSection.ordinal)
                )
            )

    def cancel(self, report_id: uuid.UUID) -> Report:
        report = self.get(report_id)
        self.access.require(Role.member, "cancel reports")
        if ReportStatus(report.status).ended or report.job_id is None:
            raise Conflict(f"report {report_id} already ended ({report.status})")
        self.jobs.cancel(report.job_id, "report cancelled")
        with unit_of_work(self.sessions) as session:
            row = session.get_one(Report, report_id, with_for_update=True)
            row.status = ReportStatus.stopped.value
            row.finished_at = utcnow()
            for section in session.scalars(
                select(ReportSection).where(
                    ReportSection.report_id == report_id,
                    ReportSection.status.in_(
                        [SectionStatus.queued.value, SectionStatus.started.value]
                    ),
                )
            ):
                section.status = SectionStatus.stopped.value
                section.finished_at = utcnow()
        return self.get(report_id)

    def retry(self, report_id: uuid.UUID) -> Started:
        """Run again only the sections that failed, stopped or found nothing."""
        report = self.get(report_id)
        self.access.require(Role.member, "retry reports")
        if not ReportStatus(report.status).ended:
            raise Conflict(f"report {report_id} is still running ({report.status})")
        again = [s for s in self.sections(report_id) if SectionStatus(s.status).needs_retry]
        if not again:
            raise Conflict(
                f"report {report_id} has no failed, stopped or ungrounded section to retry"
                if report.status != ReportStatus.not_found.value
                else f"report {report_id} found nothing on its topic: start a new report"
            )
        job = self.jobs.enqueue(
            RERUN.name,
            {"report_id": str(report_id), "section_ids": [str(s.id) for s in again]},
            workspace_id=report.workspace_id,
        )
        with unit_of_work(self.sessions) as session:
            row = session.get_one(Report, report_id, with_for_update=True)
            row.job_id = job.id
            row.status = ReportStatus.queued.value
            session.flush()
            session.expunge(row)
        return Started(row, job.id)

    def delete(self, report_id: uuid.UUID) -> None:
        report = self.get(report_id)
        self.access.require(Role.member, "delete reports")
        if not ReportStatus(report.status).ended and report.job_id is not None:
            self.jobs.cancel(report.job_id, "report deleted")
        with unit_of_work(self.sessions) as session:
            session.execute(delete(Report).where(Report.id == report_id))
            audit.add(
                session,
                audit.Entry(
                    "report.delete",
                    self.access.subject,
                    report.workspace_id,
                    f"report:{report_id}",
                    detail={"topic": report.topic[:200]},
                ),
            )
        self.store.delete_prefix(f"reports/{report_id}")

    def export(self, report_id: uuid.UUID, fmt: ExportFormat) -> ExportFile:
        """The report in `fmt`, rendered once per version into export storage."""
        report = self.get(report_id)
        if report.document is None:
            raise Conflict(
                f"report {report_id} has nothing to export yet ({report.status}); exports "
                "exist once it is assembled"
            )
        info = FORMATS[fmt]
        key = f"reports/{report_id}/v{report.version}{info.extension}"
        with self.sessions() as session:
            done = session.get(ReportExport, (report_id, report.version, fmt.value))
        if done is None or not self.store.exists(done.storage_key):
            data = render(from_json(report.document), fmt)
            self.store.put_bytes(key, data, content_type=info.media_type)
            with unit_of_work(self.sessions) as session:
                session.merge(
                    ReportExport(
                        report_id=report_id,
                        version=report.version,
                        format=fmt.value,
                        storage_key=key,
                        size_bytes=len(data),
                        created_at=utcnow(),
                    )
                )
        else:
            key = done.storage_key
        name = _SLUG.sub("-", (report.title or report.topic)[:80]).strip("-") or "report"
        return ExportFile(self.store.open(key), info.media_type, f"{name}{info.extension}")
