"""The Reports page in Debian's Chromium, against a real `citeline serve` whose `report` alias
routes to a scripted model (a remote provider, outside the system): start a report, watch the
outline and sections fill in, retry the section that failed, open a citation's span, download
each format. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import go, shot
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.report_model import DOCUMENTS, INVENTED, Model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, Model]]:
    script = Model()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


def prepare(serve: Serve, server: FakeLLMServer) -> None:
    """The scripted model behind the `report` alias, and the harbour documents, indexed."""
    api = serve.url
    added = http.post(
        f"{api}/v1/models",
        json={
            "name": "scripted",
            "provider": "openai",
            "model": "m",
            "base_url": server.openai_base_url,
        },
    )
    assert added.status_code == 201, added.text
    routed = http.put(f"{api}/v1/models/report/routes", json={"routes": [{"model": "scripted@1"}]})
    assert routed.status_code == 200, routed.text
    kb = http.post(f"{api}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    http.post(
        f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in DOCUMENTS]
    ).raise_for_status()

    def ready() -> bool:
        docs = http.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return len(docs) == len(DOCUMENTS) and all(d["status"] == "ready" for d in docs)

    wait_for(ready, timeout=120)


def test_start_watch_retry_read_and_download_a_report(
    browser: Browser, data_dir: Path, model: tuple[FakeLLMServer, Model]
) -> None:
    server, script = model
    script.broken.add("Lamps")
    serve = Serve(
        data_dir, workers=2, CITELINE_AUTH="local", CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    prepare(serve, server)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    start_a_report(page)

    sections = page.get_by_test_id("report-section")
    expect(sections).to_have_count(3, timeout=60_000)
    expect(sections.nth(0)).to_contain_text("Construction")
    shot(page, "reports-2-outline")
    expect(page.locator(".badge").first).to_have_text("partial", timeout=120_000)
    expect(page.locator('[data-testid="report-section"][data-status="failed"]')).to_contain_text(
        "scripted refusal for Lamps"
    )
    expect(page.get_by_test_id("report-error")).to_contain_text("1 failed")
    shot(page, "reports-3-partial")

    script.broken.clear()
    page.get_by_role("button", name="Retry 1 section").click()
    expect(page.locator(".badge").first).to_have_text("finished", timeout=120_000)
    expect(page.locator('[data-testid="report-section"][data-status="finished"]')).to_have_count(3)
    document = page.get_by_test_id("report-document")
    expect(document.get_by_role("heading", name="Lamps")).to_be_visible()
    expect(document).not_to_contain_text(INVENTED)
    expect(page.get_by_role("button", name="Retry 1 section")).to_have_count(0)
    shot(page, "reports-4-finished")

    number = open_a_citation(page, document)
    download_each_format(page, number)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "reports-6-phone")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No reports yet.")).to_be_visible()
    assert errors == []


def start_a_report(page: Page) -> None:
    go(page, "Reports")
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    expect(page.get_by_text("No reports yet.")).to_be_visible()
    page.get_by_label("Topic").fill("The Varnholm lighthouse")
    expect(page.get_by_label("harbour (")).to_be_checked()
    page.get_by_label("Number of sections").fill("3")
    page.get_by_label("Instructions").fill("For visitors of the harbour museum")
    shot(page, "reports-1-form")
    page.get_by_role("button", name="Start the report").click()


def open_a_citation(page: Page, document: Locator) -> str:
    """Open the first citation: its span is the reference's quote. Its number."""
    cite = document.locator("button.cite").first
    number = cite.get_attribute("data-ref")
    assert number
    cite.click()
    panel = page.get_by_role("complementary", name="Cited source")
    expect(panel).to_be_visible()
    span = panel.get_by_test_id("cited-span")
    reference = document.locator(f"#ref-{number} q")
    expect(span).to_have_text(reference.inner_text())
    expect(panel).to_contain_text("Quoted from")
    shot(page, "reports-5-citation")
    page.get_by_role("button", name="Close the source panel").click()
    expect(panel).to_be_hidden()
    expect(cite).to_be_focused()
    return number


def download_each_format(page: Page, number: str) -> None:
    files = {}
    for label, extension in [("Word (DOCX)", ".docx"), ("PDF", ".pdf"), ("Markdown", ".md")]:
        with page.expect_download() as download:
            page.get_by_role("button", name=f"Download as {label}").click()
        assert download.value.suggested_filename.endswith(extension)
        files[extension] = Path(download.value.path()).read_bytes()
    assert files[".pdf"].startswith(b"%PDF")
    with zipfile.ZipFile(io.BytesIO(files[".docx"])) as archive:
        assert "word/document.xml" in archive.namelist()
    assert f"(#ref-{number})" in files[".md"].decode()
