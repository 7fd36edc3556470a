"""The browser UI in Debian's Chromium, driven by Playwright, against a real `citeline serve`:
create a knowledge base, upload a document, watch it become ready, ask, watch the answer
stream, and open a citation whose highlighted span is the stored chunk's text.
Screenshots of each step go to test-artifacts/web/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from citeline.knowledge.models import Chunk
from tests.conftest import ROOT, wait_for
from tests.e2e.conftest import Serve, attach
from tests.e2e.proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "web"
LIGHTHOUSE = """# The Lighthouse of Varnholm

The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik.
Its lamp burned whale oil until 1902, when it was converted to electric light.

## The tower

The tower is 41 metres tall and is painted in red and white bands.
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: scripts/test.sh installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_upload_ask_and_inspect_a_citation(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    serve = Serve(data_dir, workers=1, CITELINE_LLM_THREADS="2")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    expect(page.get_by_role("heading", name="Ask")).to_be_visible()
    expect(page.get_by_text("Create one under")).to_be_visible()  # the empty state
    shot(page, "1-ask-empty")

    nav = page.get_by_role("navigation", name="Sections")
    nav.get_by_role("link", name="Knowledge bases").click()
    page.get_by_label("Name").fill("harbour")
    page.get_by_label("Description").fill("Harbour history")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("link", name="harbour").click()
    expect(page.get_by_role("heading", name="harbour")).to_be_visible()
    document = tmp_path / "lighthouse.md"
    document.write_text(LIGHTHOUSE)
    page.get_by_label("Or choose files:").set_input_files(str(document))
    row = page.locator('tr[data-source="lighthouse.md"]')
    expect(row.get_by_text("ready")).to_be_visible(timeout=60_000)
    shot(page, "2-document-ready")

    nav.get_by_role("link", name="Ask").click()
    page.get_by_label("Knowledge base").select_option(label="harbour")
    page.get_by_label("Question").fill("When was the lighthouse of Varnholm built?")
    page.get_by_role("button", name="Ask", exact=True).click()
    draft = page.get_by_test_id("draft")
    expect(draft).not_to_be_empty(timeout=120_000)  # tokens arrive before the answer
    shot(page, "3-answer-streaming")
    answer = page.get_by_test_id("answer")
    expect(answer).to_contain_text("1847", timeout=180_000)
    shot(page, "4-answer")

    page.locator("button.cite").first.click()
    panel = page.get_by_role("complementary", name="Cited source")
    expect(panel).to_be_visible()
    mark = page.get_by_test_id("cited-span")
    cited = mark.inner_text()
    assert "1847" in cited
    shot(page, "5-citation")

    check_against_the_store(serve, data_dir, cited)

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    shot(page, "6-phone")
    assert errors == []


def check_against_the_store(serve: Serve, data_dir: Path, cited: str) -> None:
    """The highlighted span is the stored chunk's text at the cited offsets."""
    jobs = httpx.get(f"{serve.url}/v1/jobs", params={"kind": "answers.answer"}).json()["jobs"]
    result = httpx.get(f"{serve.url}/v1/answers/{jobs[0]['id']}/result").json()
    citation = result["citations"][0]
    assert citation["text"] == cited
    resources, _, _ = attach(data_dir)
    try:
        with resources.sessions() as session:
            chunk = session.get_one(Chunk, uuid.UUID(citation["chunk_id"]))
            offset = citation["start"] - chunk.start
            assert chunk.text[offset : offset + len(cited)] == cited
    finally:
        resources.close()


def test_a_dropped_stream_resumes_without_losing_or_repeating_tokens(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    serve = Serve(data_dir, workers=1, CITELINE_LLM_MODEL="smollm2-135m")
    document = tmp_path / "lighthouse.md"
    document.write_text(LIGHTHOUSE)
    kb = httpx.post(f"{serve.url}/v1/knowledge-bases", json={"name": "harbour"}).json()
    with document.open("rb") as handle:
        httpx.post(
            f"{serve.url}/v1/knowledge-bases/{kb['id']}/documents",
            files=[("files", ("lighthouse.md", handle))],
        ).raise_for_status()
    wait_for(
        lambda: httpx.get(f"{serve.url}/v1/knowledge-bases/{kb['id']}").json()["chunk_count"] > 0,
        timeout=60,
    )
    proxy = CuttableProxy(serve.port)
    context = browser.new_context()
    page = context.new_page()
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    page.goto(f"{proxy.url}/#/ask")
    page.get_by_label("Knowledge base").select_option(label="harbour")
    page.get_by_label("Question").fill("Tell me everything about the lighthouse of Varnholm.")
    page.get_by_role("button", name="Ask", exact=True).click()
    draft = page.get_by_test_id("draft")
    expect(draft).not_to_be_empty(timeout=120_000)
    proxy.cut()  # the event stream drops mid-answer; EventSource reconnects with Last-Event-ID
    expect(page.get_by_test_id("answer")).to_be_visible(timeout=180_000)
    jobs = httpx.get(f"{serve.url}/v1/jobs", params={"kind": "answers.answer"}).json()["jobs"]
    result = httpx.get(f"{serve.url}/v1/answers/{jobs[0]['id']}/result").json()
    assert len(streams) >= 2, streams  # it did reconnect
    assert draft.text_content() == result["draft"]
    context.close()
    proxy.close()
