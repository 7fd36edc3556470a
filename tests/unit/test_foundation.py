"""Pure-Python pieces of the foundation: errors, settings, registry, SSE and log formats."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from citeline.errors import CitelineError, InvalidInput, NotFound, ServiceUnavailable
from citeline.jobs.events import Event
from citeline.jobs.metrics import _group
from citeline.jobs.registry import JobKind, JobRegistry, resolve
from citeline.jobs.stream import format_event
from citeline.observability.logs import JsonFormatter, job_id_var, request_id_var
from citeline.settings import Settings


def test_errors_carry_status_title_and_slug() -> None:
    assert (NotFound("x").status, NotFound("x").type_slug) == (404, "not-found")
    assert ServiceUnavailable("down").retryable
    assert not InvalidInput("bad", field="q").retryable
    assert InvalidInput("bad", field="q").field == "q"
    assert issubclass(ServiceUnavailable, CitelineError)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITELINE_PORT", "9000")
    monkeypatch.setenv("CITELINE_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.data_path == tmp_path.resolve()
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.database_url is None


def test_secrets_come_from_files_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Compose and Kubernetes mount secrets as files named after the variable."""
    (tmp_path / "citeline_database_url").write_text("postgresql://citeline:s3cret@db/citeline\n")
    (tmp_path / "citeline_jwt_secret").write_text("x" * 40)
    (tmp_path / "citeline_provider_api_keys").write_text('{"openai": "sk-from-file"}')
    monkeypatch.delenv("CITELINE_DATABASE_URL", raising=False)
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.database_url == "postgresql://citeline:s3cret@db/citeline"
    assert settings.jwt_secret is not None and settings.jwt_secret.get_secret_value() == "x" * 40
    assert settings.provider_api_keys["openai"].get_secret_value() == "sk-from-file"
    monkeypatch.setenv("CITELINE_DATABASE_URL", "postgresql://other/citeline")
    assert Settings(_secrets_dir=tmp_path).database_url == "postgresql://other/citeline"
    assert Settings.model_config.get("secrets_dir") == "/run/secrets"


def test_list_settings_are_json_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITELINE_OUTBOUND_ALLOWED_HOSTS", " 127.0.0.1, models.internal ,")
    monkeypatch.setenv("CITELINE_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    settings = Settings()
    assert settings.outbound_allowed_hosts == ["127.0.0.1", "models.internal"]
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert settings.cors_origins == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CITELINE_TRUSTED_PROXIES", "not-a-network"),
        ("CITELINE_CORS_ORIGINS", '["broken'),
        ("CITELINE_PORT", "0"),
        ("CITELINE_LOG_LEVEL", "loud"),
        ("CITELINE_WORKERS", "-1"),
    ],
)
def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def _sample(_: object) -> str:
    return "sample"


def _other(_: object) -> str:
    return "other"


def test_registry_records_import_targets_and_refuses_clashes() -> None:
    registry = JobRegistry([JobKind("unit.sample", _sample, queue="high")])
    kind = registry.get("unit.sample")
    assert (kind.queue, kind.target) == ("high", f"{__name__}:_sample")
    assert resolve(kind.target) is _sample
    registry.register(JobKind("unit.sample", _sample))  # the same function again is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(JobKind("unit.sample", _other))
    with pytest.raises(InvalidInput, match="unknown job kind"):
        registry.get("unit.missing")


def test_sse_event_format_round_trips() -> None:
    event = Event(uuid.uuid4(), 7, "progress", {"progress": 0.5}, datetime(2026, 1, 1, tzinfo=UTC))
    text = format_event(event)
    assert text.startswith("id: 7\nevent: progress\ndata: ")
    assert text.endswith("\n\n")
    assert json.loads(text.split("data: ", 1)[1])["data"] == {"progress": 0.5}


def test_terminal_events() -> None:
    now = datetime.now(UTC)
    assert Event(uuid.uuid4(), 1, "failed", {}, now).terminal
    assert not Event(uuid.uuid4(), 1, "retrying", {}, now).terminal


def test_job_metrics_are_grouped_by_kind_and_outcome() -> None:
    raw = {b"a.b|finished|count": b"2", b"a.b|finished|le=0.5": b"1", "a.b|failed|sum": "3.5"}
    grouped = _group(raw)
    assert grouped[("a.b", "finished")] == {"count": "2", "le=0.5": "1"}
    assert grouped[("a.b", "failed")] == {"sum": "3.5"}


def test_json_logs_carry_request_and_job_ids() -> None:
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("world",), "levelname": "INFO"})
    record.status = 200
    request_token, job_token = request_id_var.set("req-1"), job_id_var.set("job-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(request_token)
        job_id_var.reset(job_token)
    assert line["message"] == "hello world"
    assert (line["request_id"], line["job_id"], line["status"]) == ("req-1", "job-1", 200)
