"""The Agents page in Debian's Chromium, against a real `citeline serve` whose `assistant` alias
routes to a scripted model (a remote provider, outside the system): the registry with status,
running a task, its steps appearing live, approving its human-review step, reading the cited
output. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import go, shot
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.integration.test_agents import DOCS, Script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKFLOW = {
    "version": 1,
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "find", "type": "retrieve", "query": "{{input}}", "top_k": 3},
        {"id": "draft", "type": "llm", "prompt": "Answer: {{input}}", "cite": True},
        {"id": "review", "type": "human_review", "instructions": "Check the year is right."},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "find"},
        {"from": "find", "to": "draft"},
        {"from": "draft", "to": "review"},
        {"from": "review", "to": "end"},
    ],
}


@pytest.fixture
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=Respond(Script())) as server:
        yield server


def prepare(serve: Serve, server: FakeLLMServer) -> None:
    api = serve.url
    added = http.post(
        f"{api}/v1/models",
        json={"name": "scripted", "provider": "openai", "model": "m",
              "base_url": server.openai_base_url},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    routed = http.put(
        f"{api}/v1/models/assistant/routes", json={"routes": [{"model": "scripted@1"}]}
    )
    assert routed.status_code == 200, routed.text
    kb = http.post(f"{api}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    http.post(
        f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in DOCS]
    ).raise_for_status()

    def ready() -> bool:
        docs = http.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return len(docs) == len(DOCS) and all(d["status"] == "ready" for d in docs)

    wait_for(ready, timeout=120)
    agent = http.post(
        f"{api}/v1/agents",
        json={"name": "archivist", "system_prompt": "You answer from the harbour records.",
              "knowledge_bases": ["harbour"], "workflow": WORKFLOW,
              "description": "Answers questions about the lighthouse"},
    )  # fmt: skip
    assert agent.status_code == 201, agent.text


def test_run_watch_approve_and_read_an_agent_task(
    browser: Browser, data_dir: Path, model: FakeLLMServer
) -> None:
    serve = Serve(
        data_dir, workers=1, CITELINE_AUTH="local", CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    prepare(serve, model)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    go(page, "Agents")
    expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
    row = page.locator('tr[data-agent="archivist"]')
    expect(row).to_contain_text("archivist@1")
    expect(row.locator(".badge")).to_have_text("idle")
    shot(page, "agents-1-registry")

    page.get_by_label("Input").fill("When was the Varnholm lighthouse built?")
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Run the task").click()

    review = page.get_by_test_id("review")
    expect(review).to_be_visible(timeout=90_000)
    expect(review).to_contain_text("Check the year is right.")
    expect(review).to_contain_text("1847")
    steps = page.get_by_test_id("task-step")
    expect(steps).to_have_count(3)
    expect(page.locator('[data-testid="task-step"][data-node="draft"]')).to_contain_text("model")
    shot(page, "agents-2-review")

    page.get_by_label("Note").fill("The year matches the records.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".badge").first).to_have_text("finished", timeout=60_000)
    expect(page.locator('[data-testid="task-step"][data-node="review"]')).to_contain_text(
        "approved"
    )
    output = page.get_by_test_id("task-output")
    expect(output).to_contain_text("1847")
    expect(output).to_contain_text("[1]")
    expect(page.get_by_test_id("task-citation").first).to_contain_text("1847")
    expect(review).to_have_count(0)
    shot(page, "agents-3-finished")

    page.get_by_role("link", name="← All agents").click()
    expect(page.get_by_role("link", name="When was the Varnholm lighthouse built?")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "agents-4-phone")
    assert errors == []
