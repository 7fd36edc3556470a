"""The Access page in Debian's Chromium, driven by Playwright, against a real `citeline serve`:
add a member and change their role, make a viewer API key, use it, revoke it, and find both in
the audit log; page the log; a viewer sees no Access link. Accounts are required here, since
in local mode a request whose key is not valid falls back to the local user. Screenshots go to
test-artifacts/web/access-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect

from tests.e2e import http
from tests.e2e.conftest import Serve
from tests.e2e.test_web import (
    ADMIN,
    PASSWORD,
    VIEWER,
    add_viewer,
    create_accounts,
    shot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NEWCOMER = "newcomer@example.com"


def accept(dialog: Dialog) -> None:
    dialog.accept()


def region(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name)


def test_members_api_keys_and_the_audit_log(browser: Browser, data_dir: Path) -> None:
    create_accounts(data_dir)
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="required")
    add_viewer(serve)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", accept)  # the confirmations before removing and revoking
    page.goto(f"{serve.url}/#/access")
    sign_in(page, ADMIN, PASSWORD)
    expect(page.get_by_role("heading", name="Access", exact=True)).to_be_visible()
    nav = page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="Access")).to_have_attribute("aria-current", "page")
    expect(region(page, "Members").locator(f'tr[data-email="{ADMIN}"]')).to_contain_text("(you)")
    expect(region(page, "API keys").get_by_text("No API keys yet")).to_be_visible()
    shot(page, "access-1-empty")

    add_a_member_then_make_them_a_viewer(page)
    make_use_and_revoke_a_viewer_key(page, serve)
    read_and_page_the_audit_log(page, serve)
    keep_the_last_owner_and_remove_the_member(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    sign_in(page, VIEWER, PASSWORD)
    expect(page.get_by_test_id("user-email")).to_have_text(VIEWER)
    expect(nav.get_by_role("link", name="Access")).to_have_count(0)
    page.goto(f"{serve.url}/#/access")
    expect(page.get_by_text("Only workspace admins and owners")).to_be_visible()
    assert errors == []


def add_a_member_then_make_them_a_viewer(page: Page) -> None:
    members = region(page, "Members")
    members.get_by_label("Email").fill(NEWCOMER)
    members.get_by_label("Name").fill("New Comer")
    members.get_by_label("Password").fill(PASSWORD)
    members.get_by_label("Role", exact=True).select_option("member")
    members.get_by_role("button", name="Add user").click()
    role = members.get_by_label(f"Role of {NEWCOMER}", exact=True)
    expect(role).to_have_value("member")
    role.focus()  # by keyboard: a closed select changes with the arrow keys
    page.keyboard.press("ArrowUp")
    expect(role).to_have_value("viewer")
    page.keyboard.press("Tab")
    expect(members.get_by_role("button", name=f"Save the role of {NEWCOMER}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"{NEWCOMER} is now viewer")
    expect(role).to_have_value("viewer")
    expect(role).to_be_focused()
    # The server's refusal shows as it says it.
    members.get_by_label("Email").fill(NEWCOMER)
    members.get_by_label("Password").fill(PASSWORD)
    members.get_by_role("button", name="Add user").click()
    expect(members.get_by_role("alert")).to_contain_text(f"a user with the email {NEWCOMER}")
    shot(page, "access-2-members")


def make_use_and_revoke_a_viewer_key(page: Page, serve: Serve) -> None:
    keys = region(page, "API keys")
    keys.get_by_label("Name").fill("reporting")
    keys.get_by_label("Role", exact=True).select_option("viewer")
    keys.get_by_label("Expires after (days)").fill("30")
    keys.get_by_role("button", name="Create key").click()
    shown = keys.get_by_role("textbox", name="New API key reporting (viewer)")
    expect(shown).to_be_focused()  # and selected, ready to copy
    key = shown.input_value()
    assert key.startswith("cl_")
    expect(keys.get_by_text("won't be shown again")).to_be_visible()
    row = keys.locator('tr[data-key="reporting"]')
    expect(row).to_contain_text("active")
    shot(page, "access-3-new-key")

    bearer = {"Authorization": f"Bearer {key}"}
    assert http.get(f"{serve.url}/v1/knowledge-bases", headers=bearer).status_code == 200
    written = http.post(f"{serve.url}/v1/knowledge-bases", headers=bearer, json={"name": "x"})
    assert written.status_code == 403, written.text

    keys.get_by_role("button", name="Done").click()
    expect(shown).to_have_count(0)
    row.get_by_role("button", name="Revoke reporting").click()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    assert http.get(f"{serve.url}/v1/knowledge-bases", headers=bearer).status_code == 401


def read_and_page_the_audit_log(page: Page, serve: Serve) -> None:
    audit = region(page, "Audit log")
    for action in ("api_key.create", "api_key.revoke", "member.role", "user.create"):
        expect(audit.locator(f'tr[data-action="{action}"]').first).to_be_visible()
    expect(audit.locator('tr[data-action="member.role"]').first).to_contain_text(ADMIN)
    shot(page, "access-4-audit")
    audit.get_by_label("Action").fill("api_key.revoke")
    audit.get_by_role("button", name="Filter").click()
    expect(audit.locator("tbody tr")).to_have_count(1)
    expect(audit.locator("tbody tr")).to_contain_text("api_key.revoke")
    shot(page, "access-5-audit-filtered")

    # Enough role changes for a second page.
    token = http.post(
        f"{serve.url}/v1/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": PASSWORD},
    ).json()["access_token"]
    with http.client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}) as api:
        members = api.get("/v1/workspaces/default/members").json()["members"]
        newcomer = next(m["id"] for m in members if m["email"] == NEWCOMER)
        for i in range(55):
            changed = api.put(
                f"/v1/workspaces/default/members/{newcomer}",
                json={"role": "member" if i % 2 else "viewer"},
            )
            assert changed.status_code == 200, changed.text
    audit.get_by_label("Action").fill("member.role")
    page.keyboard.press("Enter")
    expect(audit.locator("tbody tr")).to_have_count(50)
    older = audit.get_by_role("button", name="Older")
    older.focus()
    page.keyboard.press("Enter")
    expect(audit.locator("tbody tr")).to_have_count(56)  # with the one made in the page
    expect(older).to_be_hidden()
    expect(audit.get_by_text("No older events.")).to_be_focused()


def keep_the_last_owner_and_remove_the_member(page: Page) -> None:
    members = region(page, "Members")
    members.get_by_label(f"Role of {ADMIN}", exact=True).select_option("admin")
    members.get_by_role("button", name=f"Save the role of {ADMIN}").click()
    expect(members.get_by_role("alert")).to_contain_text("must keep at least one owner")
    expect(members.get_by_label(f"Role of {ADMIN}", exact=True)).to_have_value("owner")
    members.get_by_role("button", name=f"Remove {NEWCOMER}").click()
    expect(members.locator(f'tr[data-email="{NEWCOMER}"]')).to_have_count(0)
    shot(page, "access-6-removed")


def test_the_local_user_manages_access(browser: Browser, data_dir: Path) -> None:
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="local")
    page = browser.new_page(viewport={"width": 390, "height": 800})  # a phone
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(serve.url)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Access").click()
    role = region(page, "Members").get_by_label("Role of local@localhost", exact=True)
    expect(role).to_have_value("owner")
    expect(region(page, "Audit log").get_by_text("No events yet.")).to_be_visible()
    shot(page, "access-7-local-phone")
    assert errors == []
