"""Citeline's MCP tools: each parses its arguments, calls one service acting for the caller,
and returns a model. Like a router, with MCP instead of HTTP around it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import aclosing
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import Field
from starlette.requests import Request

from citeline.auth import Access, audit
from citeline.errors import CitelineError, Forbidden
from citeline.jobs.stream import StreamHub, follow
from citeline.knowledge import Hit
from citeline.mcp_server.schemas import (
    Answer,
    Citation,
    DocumentInfo,
    DocumentList,
    KnowledgeBaseInfo,
    KnowledgeBaseList,
    Passage,
    ReportStarted,
    SearchResult,
)
from citeline.resources import Resources

T = TypeVar("T")

# How long `ask` waits for its answer before handing back the job to follow instead.
ASK_WAIT_SECONDS = 600.0
# Token events come many a second; a progress notification for them at most this often.
TOKEN_PROGRESS_SECONDS = 1.0

KnowledgeBaseRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="A knowledge base's id or name, as list_knowledge_bases shows it",
    ),
]


class Tools:
    """The tools, bound to one process's resources; the caller comes with each request."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def list_knowledge_bases(self, ctx: Context) -> KnowledgeBaseList:
        """List the knowledge bases of your workspace: their ids, names, descriptions and
        how many documents and passages each holds. Start here to find what to search."""
        access = caller(ctx)
        rows = await self._call(ctx, lambda: self.resources.knowledge(access).all_with_counts())
        return KnowledgeBaseList(
            knowledge_bases=[
                KnowledgeBaseInfo(
                    id=kb.id,
                    name=kb.name,
                    description=kb.description,
                    documents=counts.get("ready", 0),
                    passages=kb.chunk_count,
                )
                for kb, counts in rows
            ]
        )

    async def list_documents(self, knowledge_base: KnowledgeBaseRef, ctx: Context) -> DocumentList:
        """List the documents of one knowledge base: id, title, source file, status (only
        `ready` documents are searched) and passage count."""
        access = caller(ctx)
        knowledge = self.resources.knowledge(access)

        def documents() -> DocumentList:
            kb = knowledge.get(knowledge_base)
            return DocumentList(
                knowledge_base_id=kb.id,
                documents=[
                    DocumentInfo(
                        id=d.id,
                        title=d.title,
                        source=d.source,
                        status=d.status,
                        passages=d.chunk_count,
                        error=d.error,
                    )
                    for d in knowledge.documents(kb.id)
                ],
            )

        return await self._call(ctx, documents)

    async def search(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to look for")],
        ctx: Context,
        knowledge_base: Annotated[
            KnowledgeBaseRef | None,
            Field(description="Id or name; default: the workspace's default knowledge base"),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="How many passages")] = 8,
        mode: Annotated[
            Literal["hybrid", "keyword", "dense"],
            Field(description="hybrid (default): keywords (BM25) and meaning combined"),
        ] = "hybrid",
    ) -> SearchResult:
        """Search a knowledge base and return the best passages, each with its passage id,
        document id, title, character offsets in the document and text. Quote a passage by
        its document and offsets. Use `ask` instead for a written, cited answer."""
        access = caller(ctx)
        knowledge = self.resources.knowledge(access)

        def found() -> SearchResult:
            kb = knowledge.get(knowledge_base) if knowledge_base else knowledge.default()
            hits = knowledge.search(kb.id, query, k=limit, mode=mode)
            return SearchResult(
                knowledge_base_id=kb.id, query=query, passages=[_passage(h) for h in hits]
            )

        return await self._call(ctx, found)

    async def ask(
        self,
        question: Annotated[
            str, Field(min_length=1, max_length=2000, description="The question to answer")
        ],
        ctx: Context,
        knowledge_base: Annotated[
            KnowledgeBaseRef | None,
            Field(description="Id or name; default: the workspace's default knowledge base"),
        ] = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Answer a question from a knowledge base, citing the exact passages that support
        each sentence ([n] markers refer to `citations`: document, offsets and quoted text).
        Takes tens of seconds: the answer is written by a model, and progress is reported
        while it runs. Says `not_found` when the knowledge base does not answer it."""
        access = caller(ctx)
        answers = self.resources.answers(access)
        job, _ = await self._call(ctx, lambda: answers.ask(question, knowledge_base))
        hub: StreamHub = _request(ctx).app.state.stream_hub
        with anyio.move_on_after(ASK_WAIT_SECONDS) as waited:
            ended, data = await self._follow(ctx, job.id, hub)
        if waited.cancelled_caught:
            raise ToolError(
                f"the answer is still being written after {ASK_WAIT_SECONDS:.0f} s; its job is "
                f"{job.id} (GET /v1/answers/{job.id}/result once it is done)"
            )
        if ended != "finished":
            reason = data.get("error") or data.get("reason") or ended
            raise ToolError(f"the answer job {job.id} {ended}: {reason}")
        answer = _answer(await self._call(ctx, lambda: answers.result(job.id)), job.id)
        return CallToolResult(
            content=[TextContent(type="text", text=_answer_text(answer))],
            structured_content=answer.model_dump(mode="json"),
        )

    async def start_report(
        self,
        topic: Annotated[
            str, Field(min_length=1, max_length=500, description="What the report is about")
        ],
        knowledge_bases: Annotated[
            list[KnowledgeBaseRef],
            Field(min_length=1, max_length=20, description="Knowledge bases to research"),
        ],
        ctx: Context,
        sections: Annotated[int, Field(ge=1, le=20, description="How many sections")] = 5,
        instructions: Annotated[
            str, Field(max_length=2000, description="Audience, tone or focus")
        ] = "",
    ) -> ReportStarted:
        """Start a cited report on a topic: Citeline plans sections, researches each from
        the knowledge bases and assembles it with every sentence cited. It runs for minutes
        in the background; this returns at once with the report's id and its URL."""
        access = caller(ctx)
        reports = self.resources.reports(access)
        started = await self._call(
            ctx,
            lambda: reports.start(
                topic, knowledge_bases, sections=sections, instructions=instructions
            ),
        )
        base = str(_request(ctx).base_url).rstrip("/")
        report_id = started.report.id
        return ReportStarted(
            report_id=report_id,
            job_id=started.job_id,
            status=started.report.status,
            url=f"{base}/#/reports/{report_id}",
            api_url=f"{base}/v1/reports/{report_id}",
        )

    async def _call(self, ctx: Context, work: Callable[[], T]) -> T:
        """Run blocking service code on a thread; its domain errors become tool errors."""
        try:
            return await anyio.to_thread.run_sync(work)
        except CitelineError as exc:
            if isinstance(exc, Forbidden):
                await anyio.to_thread.run_sync(_audit_refusal, self.resources, ctx, exc)
            raise ToolError(f"{exc.title}: {exc.detail}") from exc

    async def _follow(
        self, ctx: Context, job_id: uuid.UUID, hub: StreamHub
    ) -> tuple[str, dict[str, Any]]:
        """Wait for the job to end, reporting its events as progress; its terminal event."""
        step = 0
        last_token = 0.0
        tokens = 0
        async with aclosing(follow(job_id, 0, events=self.resources.events, hub=hub)) as items:
            async for item in items:
                if item is None:
                    if hub.draining:
                        raise ToolError(
                            f"this Citeline server is stopping; the answer job {job_id} goes on: "
                            f"GET /v1/answers/{job_id}/result once it is done"
                        )
                    continue
                _, kind, raw = item
                data: dict[str, Any] = json.loads(raw).get("data") or {}
                if kind in ("finished", "failed", "stopped"):
                    await ctx.report_progress(step + 1, step + 1, kind)
                    return kind, data
                if kind == "token":
                    tokens += 1
                    if time.monotonic() - last_token < TOKEN_PROGRESS_SECONDS:
                        continue
                    last_token = time.monotonic()
                message = _progress_message(kind, data, tokens)
                if kind == "queued":
                    # Said first, so that a client whose stream is cut knows what to follow.
                    message = f"queued for a worker as answer job {job_id}"
                if message is not None:
                    step += 1
                    await ctx.report_progress(step, None, message)
        raise ToolError(f"the events of answer job {job_id} ended without its outcome")


def caller(ctx: Context) -> Access:
    """Who is calling: the endpoint authenticated the HTTP request before MCP saw it."""
    access = getattr(_request(ctx).state, "access", None)
    if not isinstance(access, Access):
        raise ToolError("this request was not authenticated")
    return access


def _request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolError("Citeline's tools are served over HTTP only")
    return request


def _audit_refusal(resources: Resources, ctx: Context, exc: Forbidden) -> None:
    """As for the REST API: a privileged action refused to a caller is audited."""
    access = caller(ctx)
    request = _request(ctx)
    tool = (ctx.request_context.params or {}).get("name", "?")
    audit.record(
        resources.sessions,
        audit.Entry(
            "request.denied",
            access.subject,
            access.workspace_id,
            f"MCP {tool}",
            outcome="denied",
            client=request.client.host if request.client else None,
            detail={"reason": exc.detail, "path": request.url.path},
        ),
    )


def _progress_message(kind: str, data: dict[str, Any], tokens: int) -> str | None:
    match kind:
        case "started":
            return "started"
        case "retrieval":
            return f"found {len(data.get('passages') or [])} passages"
        case "token":
            return f"writing ({tokens} pieces so far)"
        case "verifying":
            return "checking each sentence against its passages"
        case "progress" if data.get("message"):
            return str(data["message"])
        case "error":
            return f"error: {data.get('message', '')}"
        case "complete":
            return "answer complete"
    return None


def _passage(hit: Hit) -> Passage:
    details = hit.details
    return Passage(
        passage_id=hit.chunk_id,
        document_id=details["document_id"],
        title=details.get("title"),
        source=details.get("source"),
        heading_path=details.get("heading_path") or [],
        page=details.get("page"),
        start=details["start"],
        end=details["end"],
        text=details["text"],
        score=hit.score,
    )


def _answer(result: dict[str, Any], job_id: uuid.UUID) -> Answer:
    return Answer(
        status=result["status"],
        answer=result.get("answer", ""),
        citations=[
            Citation(
                marker=c["marker"],
                passage_id=c["chunk_id"],
                document_id=c["document_id"],
                title=c["title"],
                source=c["source"],
                page=c.get("page"),
                start=c["start"],
                end=c["end"],
                text=c["text"],
            )
            for c in result.get("citations") or []
        ],
        knowledge_base_id=result["knowledge_base_id"],
        job_id=job_id,
        reason=result.get("reason"),
    )


def _answer_text(answer: Answer) -> str:
    """The answer as a model reads it: the text, then each marker's source and quote."""
    if answer.status == "not_found":
        return f"Not found: {answer.answer or answer.reason or 'the knowledge base does not say'}"
    lines = [answer.answer, ""]
    for c in answer.citations:
        where = f"{c.title} ({c.source}, characters {c.start}-{c.end})"
        lines.append(f"[{c.marker}] {where}: “{c.text}”")
    return "\n".join(lines).strip()
