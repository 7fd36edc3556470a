"""Generating with a registered model: route, guard, fall back, and record what happened.

Every generation, successful or not, leaves one `generations` row naming the version that
served it, and adds its tokens to the subject's daily `token_usage` for that model.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import CitelineError, ProviderError, QuotaExceeded
from citeline.jobs.presence import holders, last_cost
from citeline.llm.messages import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    Finish,
    Message,
    Role,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from citeline.llm.models import Generation, Outcome, ProviderKind, TokenUsage
from citeline.llm.providers.base import Lease
from citeline.llm.providers.factory import loaded_name, provider_for
from citeline.llm.registry import ModelRegistry, Route, VersionSpec
from citeline.llm.resilience import ConcurrencyLimit, RetryPolicy, breaker_for, guarded_stream
from citeline.observability.tracing import tracer
from citeline.settings import Settings

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
REQUEST_DEFAULTS = ("temperature", "top_p", "max_tokens", "stop", "seed")


@dataclass
class Reply:
    """A generation under way: iterate it for events; `served_by` names the version that
    produced them (it changes if the fallback takes over)."""

    route: Route
    served_by: VersionSpec
    _events: Iterator[ChatEvent] = field(repr=False)

    def __iter__(self) -> Iterator[ChatEvent]:
        return self._events

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


class ModelService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        settings: Settings,
        access: Access | None = None,
        *,
        lease: Lease | None = None,
    ) -> None:
        self.sessions = sessions
        self.connection = connection
        self.settings = settings
        self.access = access or Access.system()
        self.lease = lease  # keeps the running job alive while a local model loads
        self.registry = ModelRegistry(
            sessions, self.access, allowed_hosts=settings.outbound_allowed_hosts
        )

    def loaded_on(self, version: VersionSpec) -> int | None:
        """How many live workers keep `version`'s model loaded; None for remote providers."""
        name = loaded_name(version, self.settings)
        return None if name is None else holders(self.connection, name)

    def load_seconds(self, version: VersionSpec) -> float | None:
        """How long the last worker took to load `version`'s model (None: remote, or never)."""
        name = loaded_name(version, self.settings)
        return None if name is None else last_cost(self.connection, name)

    def start(
        self,
        target: str,
        request: ChatRequest,
        *,
        subject: str | None = None,
        conversation: str | None = None,
        job_id: uuid.UUID | None = None,
        workspace_id: str | None = None,
    ) -> Reply:
        """Route `target` (an alias or `name[@N]`, as `workspace_id` sees it; default the
        caller's) and begin generating; nothing is sent to the provider until the reply is
        iterated."""
        quota = self.settings.llm_daily_token_quota
        if quota is not None and subject is not None and self.tokens_today(subject) >= quota:
            raise QuotaExceeded(
                f"{subject} has used its {quota} tokens for today (UTC); it resets at midnight"
            )
        route = self.registry.resolve(target, conversation or subject, workspace_id)
        reply = Reply(route, route.version, iter(()))
        reply._events = self._generate(reply, request, subject or ANONYMOUS, conversation, job_id)
        return reply

    def complete(self, target: str, request: ChatRequest, **kwargs: object) -> ChatResult:
        reply = self.start(target, request, **kwargs)  # type: ignore[arg-type]
        return ChatResult.collect(list(reply))

    def _generate(
        self,
        reply: Reply,
        request: ChatRequest,
        subject: str,
        conversation: str | None,
        job_id: uuid.UUID | None,
    ) -> Iterator[ChatEvent]:
        route = reply.route
        candidates = [route.version]
        if route.fallback is not None and route.fallback.id != route.version.id:
            candidates.append(route.fallback)
        for index, version in enumerate(candidates):
            reply.served_by = version
            record = _Record(
                route.alias, route.workspace_id, version, subject, conversation, job_id, index > 0
            )
            span = tracer.start_span(
                f"llm.generate {version.label}",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": version.provider,
                    "gen_ai.request.model": route.alias or version.label,
                    "gen_ai.response.model": version.label,
                    "gen_ai.request.max_tokens": request.max_tokens,
                    "citeline.llm.fallback": index > 0,
                    "citeline.workspace": route.workspace_id or "",
                    "enduser.id": subject,
                },
            )
            try:
                with closing(self._guarded(version, request)) as events:
                    for event in events:
                        record.saw(event)
                        yield event
            except ProviderError as exc:
                record.finish(Outcome.error, str(exc))
                self._save(record, span)
                if record.first_token_at is None and index + 1 < len(candidates):
                    log.warning(
                        "model failed; trying the fallback",
                        extra={"version": version.label, "error": str(exc)},
                    )
                    continue
                raise
            except GeneratorExit:
                record.finish(Outcome.cancelled, "the consumer stopped reading")
                self._save(record, span)
                raise
            except CitelineError as exc:
                record.finish(Outcome.error, str(exc))
                self._save(record, span)
                raise
            except BaseException as exc:
                # A job timeout or cancellation arrives as an exception from outside.
                record.finish(Outcome.cancelled, f"{type(exc).__name__}: {exc}")
                self._save(record, span)
                raise
            record.finish(Outcome.ok, None)
            self._save(record, span)
            return

    def _guarded(
        self, version: VersionSpec, request: ChatRequest
    ) -> Generator[ChatEvent, None, None]:
        settings = self.settings
        provider = provider_for(version, settings)
        prepared = apply_version(version, request)
        limit = None
        if version.provider != ProviderKind.local:
            limit = ConcurrencyLimit(
                self.connection,
                provider.endpoint,
                settings.llm_max_concurrency,
                lease_seconds=settings.llm_timeout_seconds * 2,
                wait_seconds=settings.llm_timeout_seconds,
            )
        yield from guarded_stream(
            provider.endpoint,
            lambda: provider.stream(version.model, prepared, lease=self.lease),
            breaker=breaker_for(
                provider.endpoint,
                settings.llm_breaker_failures,
                settings.llm_breaker_cool_down_seconds,
            ),
            retry=RetryPolicy(settings.llm_retry_attempts, settings.llm_retry_base_seconds),
            limit=limit,
        )

    def _save(self, record: _Record, span: Span | None = None) -> None:
        if span is not None:
            _end_span(span, record)
        usage = record.usage
        with unit_of_work(self.sessions) as session:
            session.add(
                Generation(
                    alias=record.alias,
                    workspace_id=record.workspace_id,
                    version_id=record.version.id,
                    version_label=record.version.label,
                    subject=record.subject,
                    conversation=record.conversation,
                    job_id=record.job_id,
                    fallback=record.fallback,
                    outcome=record.outcome,
                    error=record.error,
                    latency_ms=record.latency_ms,
                    first_token_ms=record.first_token_ms,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cached_tokens=usage.cached_tokens,
                )
            )
            values = {
                "requests": 1,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
            }
            table = TokenUsage.__table__
            statement = insert(TokenUsage).values(
                subject=record.subject,
                model_name=record.version.name,
                day=utcnow().date(),
                **values,
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["subject", "model_name", "day"],
                    set_={name: table.c[name] + statement.excluded[name] for name in values},
                )
            )

    def stats(self, alias: str, since: datetime) -> list[dict[str, Any]]:
        """Per version that served `alias` since `since`: volume, errors, latency, tokens;
        of the caller's workspace (the system: of all)."""
        query = text(
            """
            SELECT version_label AS version,
                   count(*) AS requests,
                   count(*) FILTER (WHERE outcome = 'error') AS errors,
                   count(*) FILTER (WHERE fallback) AS fallbacks,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                   avg(first_token_ms) AS first_token,
                   coalesce(sum(input_tokens), 0) AS input_tokens,
                   coalesce(sum(output_tokens), 0) AS output_tokens,
                   sum(output_tokens) FILTER (WHERE outcome = 'ok')
                     / nullif(sum(latency_ms - coalesce(first_token_ms, 0))
                              FILTER (WHERE outcome = 'ok'), 0) * 1000 AS tokens_per_second
            FROM generations
            WHERE alias = :alias AND created_at >= :since
              AND (CAST(:workspace AS text) IS NULL OR workspace_id = :workspace)
            GROUP BY version_label
            ORDER BY version_label
            """
        )
        with self.sessions() as session:
            parameters = {"alias": alias, "since": since, "workspace": self.access.workspace_id}
            rows = session.execute(query, parameters).mappings().all()
        return [
            {
                "version": row["version"],
                "requests": row["requests"],
                "errors": row["errors"],
                "error_rate": row["errors"] / row["requests"],
                "fallbacks": row["fallbacks"],
                "latency_ms_p50": row["p50"],
                "latency_ms_p95": row["p95"],
                "first_token_ms_avg": row["first_token"],
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "output_tokens_per_second": row["tokens_per_second"],
            }
            for row in rows
        ]

    def usage(self, subject: str | None = None) -> list[TokenUsage]:
        """Tokens per model and day of `subject` (default: the caller); only instance
        administrators may read another's."""
        subject = subject or self.access.subject
        if subject != self.access.subject:
            self.access.require_instance_admin("read another user's token usage")
        with self.sessions() as session:
            return list(
                session.query(TokenUsage)
                .filter(TokenUsage.subject == subject)
                .order_by(TokenUsage.day.desc(), TokenUsage.model_name)
            )

    def tokens_today(self, subject: str) -> int:
        with self.sessions() as session:
            total = (
                session.query(func.sum(TokenUsage.input_tokens + TokenUsage.output_tokens))
                .filter(TokenUsage.subject == subject, TokenUsage.day == utcnow().date())
                .scalar()
            )
            return int(total or 0)


@dataclass
class _Record:
    alias: str | None
    workspace_id: str | None
    version: VersionSpec
    subject: str
    conversation: str | None
    job_id: uuid.UUID | None
    fallback: bool
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    usage: Usage = field(default_factory=Usage)
    outcome: str = Outcome.ok
    error: str | None = None
    latency_ms: float = 0.0

    def saw(self, event: ChatEvent) -> None:
        if self.first_token_at is None and isinstance(event, TextDelta | ToolCallEvent):
            self.first_token_at = time.perf_counter()
        if isinstance(event, Finish):
            self.usage = event.usage

    def finish(self, outcome: Outcome, error: str | None) -> None:
        self.outcome = outcome.value
        self.error = error[:2000] if error else None
        self.latency_ms = (time.perf_counter() - self.started) * 1000

    @property
    def first_token_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.started) * 1000


def _end_span(span: Span, record: _Record) -> None:
    usage = record.usage
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    span.set_attribute("citeline.llm.outcome", record.outcome)
    if record.first_token_ms is not None:
        span.set_attribute("citeline.llm.first_token_ms", round(record.first_token_ms, 1))
    if record.outcome == Outcome.error:
        span.set_status(Status(StatusCode.ERROR, (record.error or "")[:200]))
    span.end()


def apply_version(version: VersionSpec, request: ChatRequest) -> ChatRequest:
    """The request with the version's default parameters where the caller set none, and its
    prompt template applied to the system message."""
    updates: dict[str, object] = {}
    for name in REQUEST_DEFAULTS:
        if name not in request.model_fields_set and name in version.parameters:
            updates[name] = version.parameters[name]
    template = version.prompt_template
    if template:
        messages = list(request.messages)
        system = [m for m in messages if m.role is Role.system]
        original = "\n\n".join(m.content for m in system)
        if "{system}" in template:
            content = template.replace("{system}", original)
        else:
            content = f"{template}\n\n{original}" if original else template
        rest = [m for m in messages if m.role is not Role.system]
        updates["messages"] = [Message.system(content), *rest]
    return request.model_copy(update=updates) if updates else request
