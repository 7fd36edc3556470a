"""The Assistant page in Debian's Chromium, against a real `citeline serve` whose `assistant`
alias routes to a scripted model (a remote provider, outside the system): a message streams
a reply, the tool call shows with its arguments, result and duration, the citation opens the
cited span, and the conversation comes back after a reload. Screenshots go to
test-artifacts/web/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.assistant_model import FOUNDED, AssistantModel
from tests.conftest import wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import go, shot
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.report_model import DOCUMENTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, AssistantModel]]:
    script = AssistantModel()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


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
        f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in DOCUMENTS]
    ).raise_for_status()

    def ready() -> bool:
        docs = http.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return len(docs) == len(DOCUMENTS) and all(d["status"] == "ready" for d in docs)

    wait_for(ready, timeout=120)


def test_chat_watch_a_tool_call_and_open_a_citation(
    browser: Browser, data_dir: Path, model: tuple[FakeLLMServer, AssistantModel]
) -> None:
    server, _ = model
    serve = Serve(
        data_dir, workers=1, CITELINE_AUTH="local", CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
    )
    prepare(serve, server)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    go(page, "Assistant")
    expect(page.get_by_role("heading", name="Assistant", exact=True)).to_be_visible()
    page.get_by_label("harbour").check()
    page.get_by_label("Message").fill("When was the Varnholm lighthouse built?")
    page.get_by_role("button", name="Send").click()

    call = page.get_by_test_id("tool-call").first
    expect(call).to_contain_text("search_knowledge_base", timeout=60_000)
    expect(call).to_contain_text('"query":"When was the Varnholm lighthouse built?"')
    expect(call.get_by_test_id("tool-result")).to_contain_text("[1]", timeout=60_000)
    expect(call).to_contain_text(" ms")
    reply = page.get_by_test_id("assistant-reply")
    expect(reply).to_contain_text(FOUNDED, timeout=60_000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=60_000)
    shot(page, "assistant-1-reply")

    reply.locator("button.cite").first.click()
    expect(page.get_by_test_id("cited-span")).to_contain_text("1847")
    shot(page, "assistant-2-citation")
    page.get_by_role("button", name="Close the source panel").click()

    page.reload()
    expect(page.get_by_test_id("assistant-reply")).to_contain_text(FOUNDED, timeout=30_000)
    expect(page.get_by_test_id("tool-call")).to_have_count(1)
    expect(page.get_by_test_id("tool-result")).to_contain_text("[1]")
    history = page.get_by_role("navigation", name="Assistant conversations")
    expect(history.get_by_role("link")).to_have_count(1)
    page.on("dialog", lambda dialog: dialog.accept())
    history.get_by_role("button").first.click()
    expect(history).to_contain_text("will be listed here")
    assert errors == []
