"""Knowledge bases as a newcomer meets them, in Debian's Chromium against a real `citeline
serve`: a new base opens at once; the file picker offers only what Citeline reads; every
refused file is listed with its reason; a Markdown and a PDF document preview as text (a
document's markup never runs); a failed document is retried, then replaced; a delete can be
undone. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import Serve
from tests.e2e.test_web import go, shot
from tests.e2e.test_web_ask import assert_every_control_named
from tests.fixtures_docs import pdf_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GARDEN = """# Garden notes

Tomatoes need six hours of sun a day.

## Pests

Aphids are washed off with water. <img src=x onerror="document.title='pwned'">
<script>document.title='pwned'</script>
"""


def files(tmp_path: Path) -> list[Path]:
    made = {
        "garden.md": GARDEN.encode(),
        "manual.pdf": pdf_bytes(["The pump is on page one.", "The filter is on page two."]),
        "broken.pdf": b"%PDF-1.4\nnot really a pdf",
        "budget.xlsx": b"PK\x03\x04 a spreadsheet",
        "empty.md": b"",
    }
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in made]


def row(page: Page, source: str) -> Locator:
    return page.locator(f'tr[data-source="{source}"]')


def test_create_upload_preview_retry_replace_and_undo(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    serve = Serve(data_dir, workers=1, CITELINE_AUTH="local")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{serve.url}/#/knowledge")
    page.get_by_label("Name").fill("garden")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="garden", exact=True)).to_be_visible()
    assert "/#/knowledge/" in page.url

    picker = page.get_by_label("Or choose files:")
    expect(picker).to_have_attribute(
        "accept", ".pdf,.docx,.html,.htm,.xhtml,.md,.markdown,.txt,.text"
    )
    picker.set_input_files([str(path) for path in files(tmp_path)])
    refused = page.get_by_test_id("rejected")
    expect(refused).to_contain_text("These 2 files were not added:")
    expect(refused).to_contain_text("budget.xlsx — Unsupported file type .xlsx")
    expect(refused).to_contain_text("empty.md — The file is empty")
    expect(row(page, "garden.md").get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    expect(row(page, "manual.pdf").get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    expect(row(page, "broken.pdf").get_by_text("failed", exact=True)).to_be_visible(timeout=60_000)
    shot(page, "kb-1-uploaded")
    assert_every_control_named(page)

    preview_markdown_and_pdf(page)
    retry_then_replace(page, tmp_path)
    activity_in_words(page)
    delete_with_undo(page)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(row(page, "manual.pdf")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "kb-5-phone")
    go(page, "Activity")
    expect(page.get_by_test_id("activity")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "activity-2-phone")
    assert page.title() == "Citeline"
    assert errors == []


def preview_markdown_and_pdf(page: Page) -> None:
    row(page, "garden.md").get_by_role("link", name="Garden notes").click()
    preview = page.get_by_test_id("preview")
    expect(preview.get_by_role("heading", name="Pests")).to_be_visible()
    expect(preview.get_by_test_id("chunk-mark").first).to_contain_text("Passage 1")
    # The document's markup is shown as text and never runs.
    expect(preview).to_contain_text("<script>document.title='pwned'</script>")
    expect(preview.locator("img, script")).to_have_count(0)
    shot(page, "kb-2-preview-markdown")
    page.go_back()
    row(page, "manual.pdf").get_by_role("link").click()
    expect(preview.get_by_text("Page 2", exact=True)).to_be_visible()
    expect(preview).to_contain_text("The filter is on page two.")
    shot(page, "kb-3-preview-pdf")
    page.get_by_role("link", name="← Back to garden").click()


def retry_then_replace(page: Page, tmp_path: Path) -> None:
    broken = row(page, "broken.pdf")
    expect(broken).to_contain_text("corrupt")
    broken.get_by_role("button", name="Retry broken.pdf").click()
    expect(broken.get_by_text("failed", exact=True)).to_be_visible(timeout=60_000)  # still corrupt
    fixed = tmp_path / "fixed.pdf"
    fixed.write_bytes(pdf_bytes(["A real page about the greenhouse."]))
    broken.locator('input[type="file"]').set_input_files(str(fixed))
    expect(broken.get_by_text("ready", exact=True)).to_be_visible(timeout=60_000)
    expect(row(page, "fixed.pdf")).to_have_count(0)  # it replaced broken.pdf, under its name


def delete_with_undo(page: Page) -> None:
    row(page, "garden.md").get_by_role("button", name="Delete garden.md").click()
    expect(row(page, "garden.md")).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(row(page, "garden.md")).to_be_visible()
    shot(page, "kb-4-undo")
    row(page, "garden.md").get_by_role("button", name="Delete garden.md").click()
    go(page, "Activity")  # leaving ends the time to undo
    page.go_back()
    expect(row(page, "manual.pdf")).to_be_visible()
    expect(row(page, "garden.md")).to_have_count(0)


def activity_in_words(page: Page) -> None:
    """Failures first, with their reasons in words, each job linked to its document."""
    go(page, "Activity")
    items = page.get_by_test_id("activity").get_by_role("listitem")
    expect(items.first).to_contain_text("Failed")
    expect(items.first).to_contain_text("Indexing broken.pdf into garden")
    expect(items.first).to_contain_text("The PDF is corrupt")
    expect(page.get_by_text("Indexing manual.pdf into garden")).to_be_visible()
    shot(page, "activity-1")
    assert_every_control_named(page)
    page.get_by_label("Show").select_option(label="Failures")
    expect(page.get_by_text("Indexing manual.pdf into garden")).to_have_count(0)
    items.first.get_by_text("Details for operators").click()
    expect(items.first).to_contain_text("knowledge.ingest")
    items.first.get_by_role("link", name="Open the document").click()
    expect(page.get_by_role("heading", name="broken.pdf")).to_be_visible()
    page.get_by_role("link", name="← Back to garden").click()
