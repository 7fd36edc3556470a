"""The MCP servers page in Debian's Chromium, driven by Playwright, against the app in this
process (local mode, whose user administers everything): add an HTTP server, see its tools
and each role's policy, change one, refuse a bad URL, remove the server. Screenshots go to
test-artifacts/web/mcp-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, expect

from citeline.settings import Settings
from tests.conftest import fast_settings
from tests.e2e import http
from tests.e2e.test_web import shot
from tests.mcp.support import HttpServer, http_mcp

__all__ = ["http_mcp"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data", database_url, embedded_redis_url, outbound_allowed_hosts=["127.0.0.1"]
    )


def accept(dialog: Dialog) -> None:
    dialog.accept()


def test_add_see_tools_change_a_policy_and_remove(
    browser: Browser, api_url: str, http_mcp: HttpServer
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", accept)
    page.goto(f"{api_url}/#/mcp")
    expect(page.get_by_role("heading", name="MCP servers", exact=True)).to_be_visible()
    expect(page.get_by_text("No MCP servers yet.")).to_be_visible()

    form = page.get_by_role("form", name="Add an HTTP server")
    form.get_by_label("Name").fill("lab")
    form.get_by_label("URL (streamable HTTP)").fill("ftp://example.com/mcp")
    form.get_by_label("URL (streamable HTTP)").evaluate("node => node.type = 'text'")
    form.get_by_role("button", name="Add").click()
    expect(form.get_by_role("alert")).to_contain_text("http(s) URL")

    form.get_by_label("URL (streamable HTTP)").fill(http_mcp.url)
    form.get_by_label("Bearer token (optional, stored encrypted)").fill("t0ken-never-shown")
    form.get_by_role("button", name="Add").click()
    card = page.get_by_role("region", name="lab")
    expect(card.get_by_text("Secrets stored (not shown): Authorization")).to_be_visible()
    tools = card.get_by_test_id("mcp-tools")
    expect(tools.locator('tr[data-tool="echo"]')).to_contain_text("reads only")
    erase = page.get_by_label("erase for member")
    expect(erase).to_have_value("ask")
    expect(page.get_by_label("erase for viewer")).to_have_value("deny")
    assert "t0ken-never-shown" not in page.content()
    shot(page, "mcp-1-server")

    erase.select_option("deny")
    expect(page.locator("#toast")).to_contain_text("erase: deny for member")
    policies = http.get(f"{api_url}/v1/mcp-servers/lab/policies").json()["policies"]
    assert policies == [{"tool": "erase", "role": "member", "policy": "deny"}]
    page.reload()
    expect(page.get_by_label("erase for member")).to_have_value("deny")

    card.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("No MCP servers yet.")).to_be_visible()
    assert http.get(f"{api_url}/v1/mcp-servers").json()["servers"] == []
    assert errors == []
