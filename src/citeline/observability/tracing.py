"""Distributed tracing with OpenTelemetry: one trace from an HTTP request through the job it
enqueues, the worker that runs it, retrieval and each model call.

Off unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set: then
the SDK and the OTLP/HTTP exporter are imported and spans are batched to the collector. When
off, every span is OpenTelemetry's no-op and the SDK is never imported.

An unreachable collector never slows a request or a job: spans wait in a bounded queue (the
oldest are dropped, counted in `citeline_trace_spans_dropped_total`), and flushing is bounded
in time (the SDK's own timeouts are not honoured; see `_bounded`). Spans carry no prompt or
document text.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter

log = logging.getLogger(__name__)

tracer = trace.get_tracer("citeline")

SPANS_DROPPED = Counter(
    "citeline_trace_spans_dropped", "Spans dropped because the exporter's queue was full"
)
SPANS_FAILED = Counter(
    "citeline_trace_spans_failed", "Spans the collector did not accept (after retries)"
)

_W3C = TraceContextTextMapPropagator()
_FIELDS = ("traceparent", "tracestate")
_MAX_FIELD = 1024

_provider: Any = None
_configured_pid: int | None = None


def requested() -> bool:
    """Whether the environment asks for traces to be exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def configure(service_name: str) -> bool:
    """Install the SDK's tracer provider with an OTLP/HTTP exporter, if the environment asks
    for one; True when traces are exported. Call once per process, before it serves."""
    global _provider, _configured_pid
    if _provider is not None or not requested():
        return _provider is not None
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    session = requests.Session()
    # A forked work-horse must not write on the parent's keep-alive connection.
    os.register_at_fork(after_in_child=session.close)
    exporter = _counting(OTLPSpanExporter(session=session))
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), shutdown_on_exit=False
    )
    provider.add_span_processor(_query_redactor())
    provider.add_span_processor(_dropping_processor(exporter))
    trace.set_tracer_provider(provider)
    logging.getLogger("opentelemetry.trace.propagation.tracecontext").setLevel(logging.ERROR)
    _provider, _configured_pid = provider, os.getpid()
    log.info("exporting traces", extra={"service": name})
    return True


def inject() -> dict[str, str]:
    """The current trace context, to travel with a job (empty when nothing is traced)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def extract(carrier: object) -> Context:
    """The trace context a job carries; anything malformed or oversized starts a new trace."""
    if not isinstance(carrier, Mapping):
        return Context()
    clean = {
        key: value
        for key, value in carrier.items()
        if key in _FIELDS and isinstance(value, str) and len(value) <= _MAX_FIELD
    }
    try:
        return _W3C.extract(clean, context=Context())
    except (TypeError, ValueError, AttributeError):
        return Context()


def flush(timeout_seconds: float = 2.0) -> bool:
    """Export what is queued, waiting at most `timeout_seconds`."""
    if _provider is None:
        return True
    return _bounded(_provider.force_flush, timeout_seconds)


def flush_if_forked(timeout_seconds: float = 2.0) -> bool:
    """In a forked work-horse, which ends with os._exit, export its spans before it goes."""
    if _provider is None or os.getpid() == _configured_pid:
        return True
    return flush(timeout_seconds)


def shutdown(timeout_seconds: float = 5.0) -> bool:
    if _provider is None:
        return True
    return _bounded(_provider.shutdown, timeout_seconds)


def _bounded(call: Callable[[], object], timeout_seconds: float) -> bool:
    """Run `call` on a daemon thread, waiting at most `timeout_seconds`: the SDK's flush and
    shutdown ignore their own timeouts and retry a dead collector for tens of seconds."""
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(call()), daemon=True)
    thread.start()
    thread.join(timeout_seconds)
    return bool(done) and done[0] is not False


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to log records, so logs and traces meet."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def _counting(exporter: Any) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        """Counts the spans the collector did not take."""

        def export(self, spans: Any) -> SpanExportResult:
            result = exporter.export(spans)
            if result is not SpanExportResult.SUCCESS:
                SPANS_FAILED.inc(len(spans))
            return result  # type: ignore[no-any-return]

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(exporter.force_flush(timeout_millis))

    return CountingExporter()


def redacted_query(query: str) -> str:
    """A URL query with its values hidden: `/chat?query=...` carries a user's question."""
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{name}=REDACTED" for name in names)


def _query_redactor() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class QueryRedactor(SpanProcessor):
        def on_start(self, span: Any, parent_context: Context | None = None) -> None:
            query = (span.attributes or {}).get("url.query")
            if isinstance(query, str) and query:
                span.set_attribute("url.query", redacted_query(query))

    return QueryRedactor()


def _dropping_processor(exporter: Any) -> Any:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class CountingProcessor(BatchSpanProcessor):
        """A batch processor that counts the spans its full queue drops."""

        def on_end(self, span: Any) -> None:
            queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
            if queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen:
                SPANS_DROPPED.inc()
            super().on_end(span)

    return CountingProcessor(exporter)
