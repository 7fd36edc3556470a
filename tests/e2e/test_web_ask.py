"""The Ask page as a newcomer meets it, in Debian's Chromium against a real `citeline serve`
whose `answer` alias routes to a scripted model (a remote provider, outside the system): a
conversation that survives a visit to another page and a reload, answers labelled verified or
not with their sources listed, Stop while the model writes (the question stays), a deleted
conversation, and the same page on a phone. Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import LIGHTHOUSE, go, shot
from tests.fake_llm_server import FakeLLMServer, Hang, Reply, Respond

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUILT = "The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik [1]."
TOWER = (
    "The tower is 41 metres tall and is painted in red and white bands [1]. "
    "Its keeper kept seven purple goats on the balcony of the lantern room."
)


def scripted(body: dict[str, Any]) -> Reply | Hang:
    """Rewrites a follow-up to itself; answers the lighthouse questions; hangs when asked to
    take its time."""
    last = str(body["messages"][-1]["content"])
    if last.startswith("Conversation:"):
        return Reply(last.rsplit("Last question:", 1)[1].strip())
    if "slowly" in last.lower():
        return Hang(60)
    return Reply(TOWER if "how high" in last.lower() else BUILT, chunks=6)


@pytest.fixture
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=Respond(scripted)) as server:
        yield server


def prepare(serve: Serve, server: FakeLLMServer, tmp_path: Path) -> None:
    api = serve.url
    added = http.post(f"{api}/v1/models", json={"name": "scripted", "provider": "openai",
                       "model": "m", "base_url": server.openai_base_url})  # fmt: skip
    assert added.status_code == 201, added.text
    routed = http.put(f"{api}/v1/models/answer/routes", json={"routes": [{"model": "scripted@1"}]})
    assert routed.status_code == 200, routed.text
    kb = http.post(f"{api}/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
    http.post(
        f"{api}/v1/knowledge-bases/{kb}/documents",
        files=[("files", ("lighthouse.md", LIGHTHOUSE.encode()))],
    ).raise_for_status()
    wait_for(lambda: http.get(f"{api}/v1/knowledge-bases/{kb}").json()["chunk_count"] > 0, 60)


def ask(page: Page, question: str) -> None:
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()


def test_a_conversation_persists_is_verified_and_can_be_stopped(
    browser: Browser, data_dir: Path, tmp_path: Path, model: FakeLLMServer
) -> None:
    serve = Serve(data_dir, workers=1, CITELINE_AUTH="local",
                  CITELINE_OUTBOUND_ALLOWED_HOSTS="127.0.0.1")  # fmt: skip
    prepare(serve, model, tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    expect(page.get_by_text("Your conversations will be listed here.")).to_be_visible()

    ask(page, "When was the lighthouse of Varnholm built?")
    turns = page.get_by_test_id("turn")
    expect(turns.nth(0).get_by_test_id("verdict")).to_have_text(
        "Verified: every sentence cited", timeout=60_000
    )
    expect(turns.nth(0).get_by_test_id("sources")).to_contain_text("lighthouse.md")
    expect(page.get_by_label("Question")).to_be_empty()
    turns.nth(0).get_by_role("button", name="Source 1: lighthouse.md").click()
    panel = page.get_by_role("complementary", name="Cited source")
    expect(panel).to_contain_text("Quoted from lighthouse.md")
    expect(page.get_by_test_id("cited-span")).to_contain_text("1847")
    expect(turns.nth(0).get_by_role("button", name="Source 1: lighthouse.md")).to_have_attribute(
        "aria-pressed", "true"
    )
    shot(page, "ask-1-verified")
    page.keyboard.press("Escape")

    ask(page, "And how high is the tower?")
    expect(turns.nth(1).get_by_test_id("verdict")).to_have_text(
        "1 sentence could not be verified", timeout=60_000
    )
    expect(turns.nth(1).get_by_test_id("left-out")).to_contain_text("seven purple goats")
    shot(page, "ask-2-partly-verified")
    assert_every_control_named(page)

    # Another page and back, then a reload: the thread is still there, in the history too.
    go(page, "Activity")
    go(page, "Ask")
    expect(turns).to_have_count(2)
    page.reload()
    expect(turns).to_have_count(2)
    expect(turns.nth(1).get_by_test_id("verdict")).to_contain_text("could not be verified")
    history = page.get_by_role("navigation", name="Conversations")
    expect(history.get_by_role("link", name="When was the lighthouse")).to_have_attribute(
        "aria-current", "page"
    )

    stop_keeps_the_question(page)
    rename_search_and_delete(page, serve)
    the_model_in_plain_words(page)

    page.goto(f"{serve.url}/#/ask/{uuid.uuid4()}")
    page.reload()
    expect(page.get_by_role("alert")).to_have_text(
        "This conversation no longer exists: it may have been deleted. Ask a new question below."
    )
    phone(page)
    assert errors == []


def phone(page: Page) -> None:
    """The same page at 390 px: nothing overflows sideways, the history folds away, the
    header stays small, controls are touch-sized; then dark mode, by the system and by the
    toggle."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_label("Question")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("header").bounding_box()["height"] <= 110  # type: ignore[index]
    ask_button = page.get_by_role("button", name="Ask", exact=True).bounding_box()
    assert ask_button is not None and ask_button["height"] >= 44
    expect(page.get_by_text("Ctrl+Enter sends")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Conversations")).to_be_hidden()  # folded
    shot(page, "ask-4-phone")

    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(background)
    assert dark != light and brightness(dark) < 60, (light, dark)
    theme = page.get_by_role("button", name="Dark mode")
    expect(theme).to_have_attribute("aria-pressed", "true")
    shot(page, "ask-5-phone-dark")
    theme.click()  # light, whatever the system says, and kept across a reload
    page.reload()
    assert page.evaluate(background) == light
    expect(theme).to_have_attribute("aria-pressed", "false")


def brightness(rgb: str) -> float:
    red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
    return (red + green + blue) / 3


UNNAMED = re.compile(
    r"^\s*- (button|link|textbox|combobox|checkbox|searchbox|spinbutton|radio)( \[[^\]]*\])?:?$"
)


def assert_every_control_named(page: Page) -> None:
    """The accessibility tree names every control (a button, a link, a field)."""
    snapshot = page.locator("body").aria_snapshot()
    unnamed = [line for line in snapshot.splitlines() if UNNAMED.match(line)]
    assert unnamed == [], unnamed


def test_focus_starts_at_the_skip_link(browser: Browser, data_dir: Path) -> None:
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="local")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(serve.url)
    expect(page.get_by_label("Question")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Ask")
    ).to_be_focused()


def stop_keeps_the_question(page: Page) -> None:
    """Stop while the model is writing, after a reload: the question stays in the box."""
    turns = page.get_by_test_id("turn")
    ask(page, "Slowly: what did the lamp of the Varnholm lighthouse burn?")
    expect(page.get_by_test_id("stage")).to_contain_text("Reading", timeout=30_000)
    expect(page.get_by_label("Question")).to_have_value(
        "Slowly: what did the lamp of the Varnholm lighthouse burn?"
    )
    expect(page.get_by_test_id("stage")).to_contain_text(" s")
    shot(page, "ask-3-waiting")
    page.reload()  # the answer being written is followed again
    expect(turns).to_have_count(3)
    expect(page.get_by_test_id("stage")).to_contain_text("Reading", timeout=30_000)
    page.get_by_role("button", name="Stop").click()
    expect(turns.nth(2)).to_contain_text("Stopped.", timeout=30_000)
    expect(page.get_by_label("Question")).to_have_value(
        "Slowly: what did the lamp of the Varnholm lighthouse burn?"
    )
    expect(page.get_by_role("button", name="Ask", exact=True)).to_be_enabled()


def rename_search_and_delete(page: Page, serve: Serve) -> None:
    """Rename, then a search by title, then delete (after a confirmation)."""
    turns = page.get_by_test_id("turn")
    history = page.get_by_role("navigation", name="Conversations")
    history.get_by_role("button", name="Rename When was the lighthouse", exact=False).click()
    history.get_by_label("New title").fill("Varnholm light")
    history.get_by_role("button", name="Save").click()
    expect(history.get_by_role("link", name="Varnholm light")).to_be_visible()
    history.get_by_label("Search conversations").fill("nothing like this")
    expect(history.get_by_text("No conversation has that in its title.")).to_be_visible()
    history.get_by_label("Search conversations").fill("varnholm")
    expect(history.get_by_role("link", name="Varnholm light")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    history.get_by_role("button", name="Delete Varnholm light").click()
    expect(turns).to_have_count(0)
    expect(page).to_have_url(f"{serve.url}/#/ask")


def the_model_in_plain_words(page: Page) -> None:
    """Which model answers, where it runs, whether it is in use; the routes folded away."""
    go(page, "Models")
    card = page.get_by_test_id("running-model")
    expect(card.get_by_role("heading", name="scripted@1")).to_be_visible()
    expect(card).to_contain_text("Runs at a remote service (openai)")
    expect(card.get_by_test_id("model-state")).to_contain_text("In use: it answered")
    expect(page.get_by_label("Model version, route 1")).to_be_hidden()
    page.get_by_text("Advanced: aliases, versions and routes").click()
    expect(page.get_by_text("Writes the answers on the Ask page.")).to_be_visible()
    expect(page.get_by_label("Model version, route 1")).to_be_visible()
    shot(page, "models-1")
    assert_every_control_named(page)
    go(page, "Ask")
