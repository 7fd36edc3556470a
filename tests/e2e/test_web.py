"""The browser UI in Debian's Chromium, driven by Playwright, against a real `citeline serve`:
create a knowledge base, upload a document, watch it become ready, ask, watch the answer
stream, and open a citation whose highlighted span is the stored chunk's text; in local mode,
and after signing in when accounts are required. Screenshots of each step go to
test-artifacts/web/."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from citeline.knowledge.models import Chunk
from tests.conftest import ROOT, wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve, attach
from tests.e2e.proxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = ROOT / "test-artifacts" / "web"
ADMIN, VIEWER, PASSWORD = "admin@example.com", "viewer@example.com", "s3cret-pass-123"
LIGHTHOUSE = """# The Lighthouse of Varnholm

The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik.
Its lamp burned whale oil until 1902, when it was converted to electric light.

## The tower

The tower is 41 metres tall and is painted in red and white bands.
"""


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_upload_ask_and_inspect_a_citation(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    serve = Serve(data_dir, workers=1, CITELINE_AUTH="local", CITELINE_LLM_THREADS="2")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    expect(page.get_by_role("heading", name="Ask")).to_be_visible()
    expect(page.get_by_text("Create one under")).to_be_visible()  # the empty state
    expect(page.get_by_role("group", name="Account")).to_contain_text("local mode")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    shot(page, "1-ask-empty")

    upload_and_watch(page, tmp_path, "2-document-ready")
    cited = ask_and_open_citation(page, "3-answer-streaming", "4-answer", "5-citation")
    check_against_the_store(serve, data_dir, cited, {})

    page.keyboard.press("Escape")
    expect(page.get_by_role("complementary", name="Cited source")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    shot(page, "6-phone")
    assert errors == []


def test_sign_in_then_upload_ask_and_inspect_a_citation(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    create_accounts(data_dir)
    serve = Serve(data_dir, workers=1, CITELINE_AUTH="required", CITELINE_LLM_THREADS="2")
    add_viewer(serve)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{serve.url}/#/knowledge")
    expect(page.get_by_role("heading", name="Sign in to Citeline")).to_be_visible()
    expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
    shot(page, "signin-1-form")

    sign_in(page, ADMIN, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("wrong email or password")
    expect(page.get_by_label("Password")).to_be_empty()
    shot(page, "signin-2-wrong-password")

    sign_in(page, ADMIN, PASSWORD)
    # Back where the browser was sent to sign in, with the account in the header.
    expect(page.get_by_role("heading", name="Knowledge bases")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_have_text(ADMIN)
    shot(page, "signin-3-signed-in")
    go(page, "Models")  # no question yet, so no worker has loaded the model
    expect(page.get_by_test_id("model-state")).to_contain_text(
        "Not loaded: the first question loads it"
    )

    upload_and_watch(page, tmp_path, "signin-4-document-ready")
    page.reload()  # the access token was in memory only: the refresh token restores it
    expect(page.get_by_test_id("user-email")).to_have_text(ADMIN)
    cited = ask_and_open_citation(
        page, "signin-5-answer-streaming", "signin-6-answer", "signin-7-citation"
    )
    token = http.post(
        f"{serve.url}/v1/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": PASSWORD},
    ).json()["access_token"]
    check_against_the_store(serve, data_dir, cited, {"Authorization": f"Bearer {token}"})

    page.keyboard.press("Escape")
    go(page, "Models")  # an instance administrator may route aliases
    expect(page.get_by_test_id("model-state")).to_have_text(
        "Loaded on 1 worker: questions start at once."
    )
    page.get_by_text("Advanced: aliases, versions and routes").click()
    expect(page.get_by_label("Model version, route 1")).to_be_visible()
    page.get_by_role("button", name="Save routes").click()  # the alias's routes, unchanged
    expect(page.get_by_role("status")).to_contain_text("Saved the routes of")
    shot(page, "signin-8-models")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    shot(page, "signin-9-signed-out")
    page.reload()  # the refresh token was revoked and forgotten
    expect(page.get_by_role("heading", name="Sign in to Citeline")).to_be_visible()

    sign_in(page, VIEWER, PASSWORD)
    expect(page.get_by_test_id("user-email")).to_have_text(VIEWER)
    a_viewer_cannot_change_anything(page)
    assert errors == []


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def go(page: Page, section: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=section).click()


def a_viewer_cannot_change_anything(page: Page) -> None:
    go(page, "Knowledge bases")
    expect(page.get_by_text("Your role in this workspace is viewer")).to_be_visible()
    page.get_by_role("link", name="harbour").click()
    expect(page.locator('tr[data-source="lighthouse.md"]')).to_be_visible()
    expect(page.get_by_role("button", name="Create")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete harbour")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete lighthouse.md")).to_have_count(0)
    expect(page.get_by_label("Or choose files:")).to_have_count(0)
    shot(page, "signin-10-viewer")
    go(page, "Models")
    page.get_by_text("Advanced: aliases, versions and routes").click()
    expect(page.get_by_text("Only workspace admins and instance administrators")).to_be_visible()
    expect(page.get_by_role("heading", name="Route an alias")).to_have_count(0)


def create_accounts(data_dir: Path) -> None:
    """An administrator, made with the CLI on the data directory in the environment `Serve`
    gives the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
    env.update(PYTHONPATH=str(ROOT), CITELINE_AUTH="required", CITELINE_LOG_FORMAT="text")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "citeline", "users", "create-admin", ADMIN,
         "--password", PASSWORD, "--data-dir", str(data_dir)],
        env=env, cwd=data_dir.parent, check=True, timeout=120,
    )  # fmt: skip


def add_viewer(serve: Serve) -> None:
    """A viewer, added by the administrator through the API."""
    token = http.post(
        f"{serve.url}/v1/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": PASSWORD},
    ).json()["access_token"]
    http.post(
        f"{serve.url}/v1/users",
        json={"email": VIEWER, "password": PASSWORD, "role": "viewer"},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()


def upload_and_watch(page: Page, tmp_path: Path, screenshot: str) -> None:
    """Create the `harbour` knowledge base, upload the lighthouse and wait for it to be ready."""
    go(page, "Knowledge bases")
    page.get_by_label("Name").fill("harbour")
    page.get_by_label("Description").fill("Harbour history")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="harbour")).to_be_visible()  # opened on create
    document = tmp_path / "lighthouse.md"
    document.write_text(LIGHTHOUSE)
    page.get_by_label("Or choose files:").set_input_files(str(document))
    row = page.locator('tr[data-source="lighthouse.md"]')
    expect(row.get_by_text("ready")).to_be_visible(timeout=60_000)
    shot(page, screenshot)


def ask_and_open_citation(page: Page, streaming: str, answered: str, citation: str) -> str:
    """Ask about the lighthouse, watch the answer stream, open its first citation; the
    highlighted text."""
    go(page, "Ask")
    page.get_by_label("Knowledge base").select_option(label="harbour")
    page.get_by_label("Question").fill("When was the lighthouse of Varnholm built?")
    page.get_by_role("button", name="Ask", exact=True).click()
    draft = page.get_by_test_id("draft")
    expect(draft).not_to_be_empty(timeout=120_000)  # tokens arrive before the answer
    shot(page, streaming)
    answer = page.get_by_test_id("answer")
    expect(answer).to_contain_text("1847", timeout=180_000)
    shot(page, answered)

    page.locator("button.cite").first.click()
    expect(page.get_by_role("complementary", name="Cited source")).to_be_visible()
    cited = page.get_by_test_id("cited-span").inner_text()
    assert "1847" in cited
    shot(page, citation)
    return cited


def check_against_the_store(
    serve: Serve, data_dir: Path, cited: str, headers: dict[str, str]
) -> None:
    """The highlighted span is the stored chunk's text at the cited offsets."""
    jobs = http.get(
        f"{serve.url}/v1/jobs", params={"kind": "answers.answer"}, headers=headers
    ).json()["jobs"]
    result = http.get(f"{serve.url}/v1/answers/{jobs[0]['id']}/result", headers=headers).json()
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
    serve = Serve(data_dir, workers=1, CITELINE_AUTH="local", CITELINE_LLM_MODEL="smollm2-135m")
    document = tmp_path / "lighthouse.md"
    document.write_text(LIGHTHOUSE)
    kb = http.post(f"{serve.url}/v1/knowledge-bases", json={"name": "harbour"}).json()
    with document.open("rb") as handle:
        http.post(
            f"{serve.url}/v1/knowledge-bases/{kb['id']}/documents",
            files=[("files", ("lighthouse.md", handle))],
        ).raise_for_status()
    wait_for(
        lambda: http.get(f"{serve.url}/v1/knowledge-bases/{kb['id']}").json()["chunk_count"] > 0,
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
    proxy.cut()  # the stream drops mid-answer; the page reconnects with Last-Event-ID
    expect(page.get_by_test_id("answer")).to_be_visible(timeout=180_000)
    jobs = http.get(f"{serve.url}/v1/jobs", params={"kind": "answers.answer"}).json()["jobs"]
    result = http.get(f"{serve.url}/v1/answers/{jobs[0]['id']}/result").json()
    assert len(streams) >= 2, streams  # it did reconnect
    assert draft.text_content() == result["draft"]
    context.close()
    proxy.close()
