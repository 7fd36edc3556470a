"""Uploaded files never run in the app's origin, tried in Debian's Chromium: an HTML upload
that tries to read the tab's `sessionStorage` (where the refresh token lives) is downloaded,
never rendered; Markdown opens as plain text in a tab that shares nothing with the app. And an
invitation link, opened by someone without an account, makes one and joins the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import ADMIN, PASSWORD, create_accounts, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEAL = b"""<!doctype html><html><head><title>Quarterly figures</title>
<script>document.title = "LEAKED:" + JSON.stringify(Object.assign({}, sessionStorage));</script>
</head><body><p>Figures.</p></body></html>"""
NOTES = b"# Notes\n\n<script>document.title = 'LEAKED:markdown'</script>\n\nPlain notes.\n"


def test_uploaded_pages_are_downloaded_and_text_opens_as_text(
    browser: Browser, data_dir: Path
) -> None:
    create_accounts(data_dir)
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="required")
    token = http.post(
        f"{serve.url}/v1/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": PASSWORD},
    ).json()["access_token"]
    with http.client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}) as api:
        kb = api.post("/v1/knowledge-bases", json={"name": "finance"}).json()["id"]
        uploaded = api.post(
            f"/v1/knowledge-bases/{kb}/documents",
            files=[("files", ("figures.html", STEAL)), ("files", ("notes.md", NOTES))],
        )
        assert uploaded.status_code == 202
        raw = api.get(
            f"/v1/knowledge-bases/{kb}/documents/{uploaded.json()['documents'][0]['document_id']}"
            "/file"
        )
        assert raw.headers["content-disposition"].startswith("attachment")
        assert raw.headers["content-security-policy"].startswith("sandbox")

    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{serve.url}/#/knowledge/{kb}")
    sign_in(page, ADMIN, PASSWORD)
    row = page.locator('tr[data-source="figures.html"]')
    expect(row).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('citeline.refresh')")  # there to be stolen

    row.get_by_role("link").click()  # its page: not indexed yet (no worker), the original there
    expect(page.get_by_role("alert")).to_have_text(
        "figures.html is still being indexed; its preview is ready when it is"
    )
    original = page.get_by_role("link", name="Open or download the original")
    with page.expect_download() as download:
        original.click()
    assert download.value.suggested_filename == "figures.html"
    page.wait_for_timeout(500)  # a tab, had one opened, would have had time to run its script
    assert len(context.pages) == 1
    assert not any("LEAKED" in p.title() for p in context.pages)

    page.go_back()
    page.locator('tr[data-source="notes.md"]').get_by_role("link").click()
    with context.expect_page() as opened:
        original.click()
    notes = opened.value
    notes.wait_for_load_state()
    assert notes.evaluate("document.contentType") == "text/plain"
    assert "<script>" in notes.inner_text("body")
    assert "LEAKED" not in notes.title()
    assert notes.evaluate("sessionStorage.length") == 0  # nothing of the app's tab
    shot(notes, "security-1-markdown-as-text")
    notes.close()
    assert errors == []
    context.close()


def test_an_invitation_link_makes_an_account_and_joins(browser: Browser, data_dir: Path) -> None:
    create_accounts(data_dir)
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="required")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{serve.url}/#/access")
    sign_in(page, ADMIN, PASSWORD)
    invitations = page.get_by_role("region", name="Invitations")
    invitations.get_by_label("Email to invite").fill("newcomer@example.com")
    invitations.get_by_label("Role to offer").select_option("viewer")
    invitations.get_by_role("button", name="Invite").click()
    link = invitations.get_by_role("textbox", name="Invitation link for newcomer@example.com")
    expect(link).to_be_visible()
    url = link.input_value()
    assert url.startswith(f"{serve.url}/#/invitation/")
    expect(invitations.locator('tr[data-invited="newcomer@example.com"]')).to_be_visible()
    shot(page, "security-2-invited")

    stranger = browser.new_page(viewport={"width": 390, "height": 844})
    stranger.goto(url)
    stranger.get_by_label("Password").fill("my own new password")
    stranger.get_by_label("Your name (for a new account)").fill("New Comer")
    stranger.get_by_role("button", name="Accept the invitation").click()
    expect(stranger.get_by_test_id("user-email")).to_have_text("newcomer@example.com")
    shot(stranger, "security-3-joined")
    stranger.close()

    page.reload()
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_label("Role of newcomer@example.com", exact=True)).to_have_value("viewer")
    expect(invitations.get_by_text("No invitations waiting")).to_be_visible()
