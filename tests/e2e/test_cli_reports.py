"""`citeline report` against a real `citeline serve` whose `report` alias routes to a scripted
model (a remote provider, outside the system): live per-section progress, a partial report
retried, exports written whole, and clear errors."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Serve
from tests.e2e.test_cli import Cli
from tests.e2e.test_web_reports import prepare
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.report_model import FOUNDED, INVENTED, Model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, Model]]:
    script = Model()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


def test_report_from_the_command_line(
    data_dir: Path, tmp_path: Path, model: tuple[FakeLLMServer, Model]
) -> None:
    server, script = model
    script.broken.add("Lamps")
    serve = Serve(
        data_dir, workers=2, CITELINE_AUTH="local", CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    prepare(serve, server)
    cli = Cli(tmp_path / "alice", CITELINE_URL=serve.url)

    written = cli("report", "The Varnholm lighthouse", "--kb", "harbour", "--sections", "3")
    assert written.returncode == 0, written.stderr + written.stdout
    assert "writing   1. Construction" in written.stderr
    assert "failed    2. " in written.stderr and "scripted refusal for Lamps" in written.stderr
    assert "partial: some sections could not be grounded" in written.stderr
    assert FOUNDED in written.stdout and INVENTED not in written.stdout

    reports = json.loads(cli.ok("report", "list", "--json"))
    assert [r["status"] for r in reports] == ["partial"]
    report_id = reports[0]["id"]

    script.broken.clear()
    retried = cli("report", "retry", report_id)
    assert retried.returncode == 0, retried.stderr
    assert "status    finished" in retried.stdout
    assert "2. Lamps: finished" in retried.stdout

    docx = tmp_path / "out" / "report.docx"
    docx.parent.mkdir()
    exported = cli("report", "export", report_id, "--format", "docx", "-o", str(docx))
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(docx) as archive:
        assert FOUNDED in archive.read("word/document.xml").decode()
    assert sorted(p.name for p in docx.parent.iterdir()) == ["report.docx"]  # no partial file
    markdown = cli.ok("report", "export", report_id)
    assert "## Lamps" in markdown and "## References" in markdown

    pdf = cli("report", "export", report_id, "--format", "pdf")
    assert pdf.returncode == 2 and "a pdf export is a file: add -o FILE" in pdf.stderr
    unknown = cli("report", "Anything", "--kb", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    assert f"deleted report {report_id}" in cli.ok("report", "delete", report_id, "--yes")
    gone = cli("report", "show", report_id)
    assert gone.returncode == 2 and "not found" in gone.stderr
