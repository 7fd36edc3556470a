"""The report's jobs: a plan that fans out one job per section, the sections, and the
assembly that runs once when the last section has ended.

The plan's job is the report's run: its events are the report's (the outline, each section's
start and end, the assembly), it waits while the sections run, and it ends as the assembly
does. A retry is a run of its own over the sections to do again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, Role
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import ClientError, ConfigurationError, NotFound, ProviderError
from citeline.jobs.context import JobCancelled, JobContext
from citeline.jobs.fanout import Child, FollowUp
from citeline.jobs.registry import JobKind
from citeline.knowledge import KnowledgeService
from citeline.llm import Lease, ModelService
from citeline.reports.assembly import SectionDraft, assemble, to_json
from citeline.reports.models import Report, ReportSection, ReportStatus, SectionStatus
from citeline.reports.outline import (
    PlannedSection,
    fallback_questions,
    parse_plan,
    questions_from_text,
)
from citeline.reports.prompts import plan_request, questions_request
from citeline.reports.research import (
    Budget,
    Caller,
    ModelCall,
    complete_json,
    retrieve,
    write,
)
from citeline.settings import Settings

log = logging.getLogger(__name__)

FIRST_PASS = 8  # passages per knowledge base the plan is drawn from
HEADINGS = 16


class ReportDeps(Protocol):
    """What the report's jobs need of the process they run in."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    def knowledge(self, access: Access | None = None) -> KnowledgeService: ...

    def models(
        self, access: Access | None = None, *, lease: Lease | None = None
    ) -> ModelService: ...


def _report(session: Session, report_id: uuid.UUID) -> Report:
    report = session.get(Report, report_id, with_for_update=True)
    if report is None:
        raise NotFound(f"report {report_id} no longer exists")
    return report


def _acting(report: Report) -> Access:
    """The jobs act in the report's workspace, with the system's authority."""
    return Access("system", report.workspace_id, Role.owner)


# ---------- plan ----------


def plan(context: JobContext[ReportDeps]) -> dict[str, Any]:
    deps = context.services
    report_id = uuid.UUID(str(context.args["report_id"]))
    with unit_of_work(deps.sessions) as session:
        report = _report(session, report_id)
        report.status = ReportStatus.started.value
        report.started_at = report.started_at or utcnow()
        session.flush()
        session.expunge(report)
    knowledge = deps.knowledge(_acting(report))
    models = deps.models(lease=context.lease)
    kbs = [uuid.UUID(kb) for kb in report.knowledge_base_ids]
    context.progress(0.05, "searching the knowledge bases")
    found = retrieve(knowledge, kbs, [report.topic], FIRST_PASS).passages
    threshold = deps.settings.report_min_relevance
    best = max((p.relevance for p in found if p.relevance is not None), default=None)
    if best is None or best < threshold:
        closest = [p.as_json() for p in found[:3]]
        with unit_of_work(deps.sessions) as session:
            row = _report(session, report_id)
            row.status = ReportStatus.not_found.value
            row.closest = closest
            row.error = "the knowledge bases say nothing relevant about the topic"
            row.finished_at = utcnow()
        context.emit("report.not_found", {"closest": closest})
        return {"report_id": str(report_id), "status": ReportStatus.not_found.value}
    headings = _headings(found)
    context.progress(0.15, "planning the sections")
    title, planned, calls = _outline(context, deps, models, report, headings)
    with unit_of_work(deps.sessions) as session:
        row = _report(session, report_id)
        row.title = title
        # An earlier attempt of this plan may have died after writing its sections.
        session.execute(delete(ReportSection).where(ReportSection.report_id == report_id))
        for ordinal, section in enumerate(planned, start=1):
            session.add(
                ReportSection(
                    id=uuid.uuid4(),
                    report_id=report_id,
                    ordinal=ordinal,
                    title=section.title,
                    questions=list(section.questions),
                    status=SectionStatus.queued.value,
                    progress=0.0,
                    sentences=[],
                    citations=[],
                    passages=[],
                    model_calls=[c.as_json() for c in calls] if ordinal == 1 else [],
                    dropped=[],
                    attempts=0,
                )
            )
        session.flush()
        ids = [str(s.id) for s in session.scalars(_sections(report_id))]
    context.emit("outline", {"title": title, "sections": [s.as_json() for s in planned]})
    _fan_out(context, report_id, ids)
    return {"report_id": str(report_id), "sections": len(ids)}


def _outline(
    context: JobContext[ReportDeps],
    deps: ReportDeps,
    models: ModelService,
    report: Report,
    headings: Sequence[str],
) -> tuple[str, list[PlannedSection], list[ModelCall]]:
    """The sections: the person's titles with questions the model writes, or the model's plan
    (filled from the knowledge base's headings where it gave too few)."""
    calls: list[ModelCall] = []
    caller = Caller(report.owner, report.workspace_id, context.job_id)
    fixed = [str(title) for title in context.args.get("outline") or []]
    if fixed:
        planned = []
        for title in fixed:
            context.check_cancelled()
            request = questions_request(report.topic, title, headings)
            text, call = complete_json(models, report.model, request, "questions", caller)
            calls.append(call)
            questions = questions_from_text(text) or fallback_questions(report.topic, title)
            planned.append(PlannedSection(title, questions))
        return report.topic, planned, calls
    request = plan_request(report.topic, report.instructions, headings, report.target_sections)
    text, call = complete_json(models, report.model, request, "plan", caller)
    calls.append(call)
    planned_title, planned = parse_plan(text, report.target_sections)
    for heading in headings:
        if len(planned) >= report.target_sections:
            break
        name = heading.split(" > ")[-1]
        if name.lower() not in {p.title.lower() for p in planned}:
            planned.append(PlannedSection(name, fallback_questions(report.topic, name)))
    return planned_title or report.topic, planned, calls


def _headings(found: Sequence[Any]) -> list[str]:
    out: list[str] = []
    for passage in found:
        where = " > ".join(part for part in (passage.title, *passage.heading_path) if part)
        if where and where not in out:
            out.append(where)
    return out[:HEADINGS]


def _sections(report_id: uuid.UUID) -> Any:
    return (
        select(ReportSection)
        .where(ReportSection.report_id == report_id)
        .order_by(ReportSection.ordinal)
    )


def _fan_out(context: JobContext[ReportDeps], report_id: uuid.UUID, section_ids: list[str]) -> None:
    context.fan_out(
        [Child(SECTION, {"report_id": str(report_id), "section_id": s}) for s in section_ids],
        then=FollowUp(ASSEMBLE, {"report_id": str(report_id)}),
    )


# ---------- a section ----------


def section(context: JobContext[ReportDeps]) -> dict[str, Any]:
    deps = context.services
    section_id = uuid.UUID(str(context.args["section_id"]))
    with unit_of_work(deps.sessions) as session:
        row = session.get(ReportSection, section_id, with_for_update=True)
        if row is None:
            raise NotFound(f"report section {section_id} no longer exists")
        report = _report(session, row.report_id)
        row.status = SectionStatus.started.value
        row.job_id = context.job_id
        row.started_at = utcnow()
        row.attempts += 1
        row.error = None
        title, questions, ordinal = row.title, list(row.questions), row.ordinal
        session.flush()
        session.expunge(report)
    context.emit_parent("section.started", {"section": ordinal, "title": title})
    try:
        written = _write(context, deps, report, title, questions, section_id)
    except JobCancelled:
        _section_ended(deps.sessions, section_id, SectionStatus.stopped, "cancelled")
        raise
    except Exception as exc:
        # A mistake of the input, the setup or the provider is not retried; anything else
        # is, until the last attempt.
        final = isinstance(exc, ClientError | ConfigurationError | ProviderError)
        if final or context.last_attempt:
            reason = f"{type(exc).__name__}: {exc}"
            _section_ended(deps.sessions, section_id, SectionStatus.failed, reason)
            context.emit_parent("section.failed", {"section": ordinal, "reason": reason})
        raise
    status = SectionStatus.finished if written.grounded else SectionStatus.not_found
    with unit_of_work(deps.sessions) as session:
        row = session.get_one(ReportSection, section_id, with_for_update=True)
        row.status = status.value
        row.sentences = written.sentences
        row.citations = written.citations
        row.draft = written.draft
        row.passages = written.passages
        row.model_calls = [*row.model_calls, *(c.as_json() for c in written.calls)]
        row.dropped = written.dropped
        row.progress = 1.0
        row.finished_at = utcnow()
        session.execute(
            update(Report)
            .where(Report.id == row.report_id, Report.first_section_at.is_(None))
            .values(first_section_at=utcnow())
        )
    context.emit_parent(
        "section.finished",
        {"section": ordinal, "status": status.value, "sentences": len(written.sentences)},
    )
    return {"section_id": str(section_id), "status": status.value}


def _write(
    context: JobContext[ReportDeps],
    deps: ReportDeps,
    report: Report,
    title: str,
    questions: list[str],
    section_id: uuid.UUID,
) -> Any:
    settings = deps.settings
    knowledge = deps.knowledge(_acting(report))
    models = deps.models(lease=context.lease)
    kbs = [uuid.UUID(kb) for kb in report.knowledge_base_ids]

    def searched(fraction: float) -> None:
        context.progress(0.4 * fraction, "searching")
        _section_progress(deps.sessions, section_id, 0.4 * fraction)

    found = retrieve(knowledge, kbs, questions, settings.report_candidates, searched)
    context.progress(0.45, "writing")
    _section_progress(deps.sessions, section_id, 0.45)
    budget = Budget(
        candidates=settings.report_candidates,
        context_tokens=settings.report_section_context_tokens,
        max_tokens=settings.report_section_max_tokens,
        min_relevance=settings.report_min_relevance,
        support_threshold=settings.answer_support_threshold,
    )
    return write(
        models, report.model, knowledge, topic=report.topic, title=title, questions=questions,
        instructions=report.instructions, found=found, budget=budget,
        caller=Caller(report.owner, report.workspace_id, context.job_id),
        checkpoint=context.check_cancelled,
    )  # fmt: skip


def _section_progress(sessions: sessionmaker[Session], section_id: uuid.UUID, value: float) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(ReportSection).where(ReportSection.id == section_id).values(progress=value)
        )


def _section_ended(
    sessions: sessionmaker[Session], section_id: uuid.UUID, status: SectionStatus, reason: str
) -> None:
    with unit_of_work(sessions) as session:
        session.execute(
            update(ReportSection)
            .where(ReportSection.id == section_id)
            .values(status=status.value, error=reason[:2000], finished_at=utcnow())
        )


# ---------- assembly ----------


def assembly(context: JobContext[ReportDeps]) -> dict[str, Any]:
    deps = context.services
    report_id = uuid.UUID(str(context.args["report_id"]))
    with unit_of_work(deps.sessions) as session:
        report = _report(session, report_id)
        rows = list(session.scalars(_sections(report_id)))
        # A section whose job ended without writing (stopped while queued, or failed on a
        # worker that died) is marked so.
        for row in rows:
            if row.status in (SectionStatus.queued.value, SectionStatus.started.value):
                row.status = SectionStatus.stopped.value
                row.finished_at = utcnow()
        drafts = [
            SectionDraft(
                row.title,
                row.sentences,
                row.citations,
                frozenset(str(p["chunk_id"]) for p in row.passages),
            )
            for row in rows
            if row.status == SectionStatus.finished.value
        ]
        statuses = [SectionStatus(row.status) for row in rows]
        names = _kb_names(deps, report)
        models_used = sorted({c["model"] for row in rows for c in row.model_calls})
        title = report.title or report.topic
    error: str | None
    if not drafts:
        status = ReportStatus.failed
        document = None
        error = "no section could be grounded in the knowledge bases"
    else:
        built = assemble(
            title, drafts, language=None, generated_at=utcnow(),
            model=", ".join(models_used) or report.model, knowledge_bases=names,
        )  # fmt: skip
        document = to_json(built.document)
        # A section whose every claim an earlier one already made is merged away, not lost.
        grounded = all(s is SectionStatus.finished for s in statuses)
        status = ReportStatus.finished if grounded else ReportStatus.partial
        error = None if grounded else _why_partial(statuses)
    with unit_of_work(deps.sessions) as session:
        row = _report(session, report_id)
        if row.status == ReportStatus.stopped.value:
            return {"report_id": str(report_id), "status": row.status}
        row.status = status.value
        row.document = document
        row.error = error
        row.version += 1
        row.finished_at = utcnow()
    context.emit_parent("report.assembled", {"status": status.value})
    return {"report_id": str(report_id), "status": status.value}


def _why_partial(statuses: Sequence[SectionStatus]) -> str:
    counts: dict[str, int] = {}
    for status in statuses:
        if status is not SectionStatus.finished:
            counts[status.value] = counts.get(status.value, 0) + 1
    parts = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in counts.items())
    return f"some sections could not be grounded ({parts}); retry them"


def _kb_names(deps: ReportDeps, report: Report) -> list[str]:
    knowledge = deps.knowledge(_acting(report))
    names = []
    for kb in report.knowledge_base_ids:
        try:
            names.append(knowledge.get(uuid.UUID(kb)).name)
        except NotFound:
            names.append(kb)
    return names


# ---------- a retry ----------


def rerun(context: JobContext[ReportDeps]) -> dict[str, Any]:
    """Run again the sections named (those that failed, stopped or found nothing)."""
    deps = context.services
    report_id = uuid.UUID(str(context.args["report_id"]))
    section_ids = [str(s) for s in context.args["section_ids"]]
    with unit_of_work(deps.sessions) as session:
        report = _report(session, report_id)
        report.status = ReportStatus.started.value
        report.finished_at = None
        report.error = None
        session.execute(
            update(ReportSection)
            .where(ReportSection.id.in_([uuid.UUID(s) for s in section_ids]))
            .values(status=SectionStatus.queued.value, progress=0.0, error=None)
        )
    context.emit("rerun", {"sections": len(section_ids)})
    _fan_out(context, report_id, section_ids)
    return {"report_id": str(report_id), "sections": len(section_ids)}


PLAN = JobKind("reports.plan", plan, queue="default", timeout_seconds=1800, max_attempts=2)
SECTION = JobKind("reports.section", section, queue="default", timeout_seconds=1800, max_attempts=3)
ASSEMBLE = JobKind("reports.assemble", assembly, queue="high", timeout_seconds=600, max_attempts=3)
RERUN = JobKind("reports.rerun", rerun, queue="default", timeout_seconds=600, max_attempts=2)
JOB_KINDS = (PLAN, SECTION, ASSEMBLE, RERUN)
