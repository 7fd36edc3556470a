"""The agent builder page in Debian's Chromium, against a real `citeline serve` whose
`assistant` alias routes to a scripted model (a remote provider, outside the system): build an
agent with the page's options, one typed answer and one typed change, see the stage, fields and
the workflow drawn beside the chat, finish, read the Mermaid text, delete. Screenshots go to
test-artifacts/web/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import go, shot
from tests.fake_llm_server import FakeLLMServer, Reply, Respond

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def read(body: dict[str, Any]) -> Reply:
    """A model that copies the goals it is given and names the tone as the field to change."""
    keys = body["response_format"]["json_schema"]["schema"]["properties"]
    said = body["messages"][-1]["content"].split("Their message: ", 1)[-1]
    values: dict[str, Any] = {key: "unknown" for key in keys}
    if "goals" in keys:
        values["goals"] = [said]
    if "change" in keys:
        values["change"] = "tone" if "tone" in said else "none"
    return Reply(json.dumps(values), chunks=1)


@pytest.fixture
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=Respond(read)) as server:
        yield server


def test_build_an_agent_in_the_page(browser: Browser, data_dir: Path, model: FakeLLMServer) -> None:
    serve = Serve(
        data_dir, workers=1, CITELINE_AUTH="local", CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    route_assistant(serve, model)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    go(page, "Agent builder")
    expect(page.get_by_text("No builder sessions yet.")).to_be_visible()
    page.get_by_role("button", name="Build a new agent").click()
    thread = page.locator("#builder-thread")
    expect(thread).to_contain_text("Describe the agent you want")
    shot(page, "builder-1-start")

    page.get_by_role("button", name="question answering").click()
    expect(page.locator('#builder-stages li[aria-current="step"]')).to_have_text("goals")
    expect(page.locator("#builder-diagram .wf-node")).not_to_have_count(0)  # a draft already
    page.get_by_label("Your message").fill("answer questions about the harbour handbook")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-field="goals"]')).to_have_text(
        "answer questions about the harbour handbook", timeout=60_000
    )
    page.get_by_role("button", name="formal").click()
    tools = page.locator("#builder-tools")
    expect(tools).to_contain_text("search_knowledge_base")
    expect(tools.get_by_role("checkbox")).to_be_checked()  # suggested from the goals
    shot(page, "builder-2-tools")
    page.get_by_role("button", name="Confirm these tools").click()
    page.get_by_role("button", name="Yes, review each output").click()
    expect(page.locator('#builder-stages li[aria-current="step"]')).to_have_text("review")
    expect(page.locator('#builder-diagram [data-node="review"]')).to_be_visible()
    expect(page.locator('#builder-diagram [data-node="tool_1"]')).to_contain_text(
        "search knowledge base"
    )

    page.get_by_label("Your message").fill("change the tone to friendly")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-field="tone"]')).to_have_text("friendly", timeout=60_000)
    expect(page.locator("#builder-prompt")).to_contain_text("warmly")
    shot(page, "builder-3-review")

    page.get_by_role("button", name="Confirm and finish").click()
    expect(page.locator(".badge").first).to_have_text("completed")
    expect(page.get_by_label("Your message")).to_be_hidden()
    expect(page.locator("#builder-prompt")).to_contain_text("Citation rules")
    page.get_by_text("Mermaid source").click()
    expect(page.locator("#builder-mermaid")).to_contain_text("flowchart TD")
    shot(page, "builder-4-completed")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "builder-5-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    register_then_delete(page, serve)
    assert errors == []


def route_assistant(serve: Serve, model: FakeLLMServer) -> None:
    added = http.post(
        f"{serve.url}/v1/models",
        json={"name": "scripted", "provider": "openai", "model": "m",
              "base_url": model.openai_base_url},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    routed = http.put(
        f"{serve.url}/v1/models/assistant/routes", json={"routes": [{"model": "scripted@1"}]}
    )
    assert routed.status_code == 200, routed.text


def register_then_delete(page: Page, serve: Serve) -> None:
    """Register the finished agent (it shows on the Agents page), then delete the session."""
    session_url = page.url
    page.get_by_label("Register it as an agent named").fill("harbour-helper")
    page.get_by_role("button", name="Register agent").click()
    expect(page).to_have_url(f"{serve.url}/#/agents")
    expect(page.locator('tr[data-agent="harbour-helper"]')).to_be_visible()
    page.goto(session_url)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No builder sessions yet.")).to_be_visible()
