"""Per-user MCP credentials on the MCP servers page in Debian's Chromium, driven by Playwright
(local mode, whose one user administers everything): add a server whose Authorization each
user sets, set yours, see that only the key's name shows, use it, clear it. Screenshots go
to test-artifacts/web/mcp-credentials-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from citeline.mcp import ApprovingToolbox
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import fast_settings
from tests.e2e import http
from tests.e2e.test_web import shot
from tests.mcp.support import HttpServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SECRET = "Bearer web-typed-secret-7"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data", database_url, embedded_redis_url, outbound_allowed_hosts=["127.0.0.1"]
    )


@pytest.fixture
def echo() -> Iterator[HttpServer]:
    server = HttpServer("tests.mcp.auth_echo_server").start()
    yield server
    server.stop()


def whoami(resources: Resources) -> str:
    """What the echo server hears from the local user's calls."""
    user = resources.accounts().ensure_local_user()
    box = resources.assistant_toolbox("default", f"user:{user.id}")
    assert isinstance(box, ApprovingToolbox)
    try:
        box.tools()
        return box.call("echo__whoami", {}).text
    finally:
        box.close()


def test_set_and_clear_your_own_credentials_for_a_server(
    browser: Browser, api_url: str, resources: Resources, echo: HttpServer
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{api_url}/#/mcp")
    form = page.get_by_role("form", name="Add an HTTP server")
    form.get_by_label("Name").fill("echo")
    form.get_by_label("URL (streamable HTTP)").fill(echo.url)
    form.get_by_label("Each user sets their own Authorization header instead").check()
    expect(form.get_by_label("Bearer token (optional, stored encrypted)")).to_be_disabled()
    form.get_by_role("button", name="Add").click()

    card = page.get_by_role("region", name="echo")
    mine = card.get_by_role("form", name="Your own credentials")
    state = mine.get_by_test_id("mcp-credentials-state")
    expect(state).to_have_text(
        "Your credentials: none set; missing Authorization: its tools fail for you until you "
        "set them"
    )
    expect(card.get_by_role("alert").last).to_contain_text("needs your own credentials")
    server = http.get(f"{api_url}/v1/mcp-servers/echo").json()
    assert server["user_header_names"] == ["Authorization"] and server["header_names"] == []

    mine.get_by_label("Authorization").fill(SECRET)
    mine.get_by_role("button", name="Save mine").click()
    expect(state).to_have_text("Your credentials: set for Authorization")
    expect(page.locator("#toast")).to_contain_text("Saved your credentials for echo")
    expect(mine.get_by_label("Authorization")).to_have_value("")
    assert "web-typed-secret" not in page.content()
    # The tools, refused before (nothing set and nothing cached), now list with hers.
    expect(card.get_by_test_id("mcp-tools").locator('tr[data-tool="whoami"]')).to_be_visible()
    shot(page, "mcp-credentials-1-set")
    assert whoami(resources) == f"authorization={SECRET} tenant=-"

    page.reload()
    expect(state).to_have_text("Your credentials: set for Authorization")
    mine.get_by_role("button", name="Clear mine").click()
    expect(state).to_contain_text("none set; missing Authorization")
    found = http.get(f"{api_url}/v1/mcp-servers/echo/credentials").json()
    assert found["complete"] is False and found["header_names"] == []
    assert "Authorization not set" in whoami(resources)
    assert errors == []
