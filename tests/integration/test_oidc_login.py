"""Single sign-on end to end: Citeline's login and callback routes against the real
`oidc-provider` on loopback, down to tokens the API accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.auth.accounts import Accounts
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, fast_settings
from tests.oidc_provider import OidcProvider, run_oidc_provider

LOGIN_CODE = "urn:citeline:login-code"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with run_oidc_provider() as running:
        yield running


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, embedded_redis_url: str, provider: OidcProvider
) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_redirect_url=provider.redirect_uri,
        oidc_default_role="viewer",
    )


@pytest.fixture
def api(resources: Resources) -> Iterator[str]:
    with LiveServer(create_app(resources)) as url:
        yield url


def _sign_in(api: str, provider: OidcProvider, user: str, return_to: str = "/") -> httpx.Response:
    """Browser steps: our login → the provider → back to our callback."""
    start = httpx.get(f"{api}/v1/auth/oidc/login", params={"return_to": return_to})
    assert start.status_code == 302
    assert start.headers["location"].startswith(provider.issuer)
    query = urlsplit(provider.login(start.headers["location"], user)).query
    return httpx.get(f"{api}/v1/auth/oidc/callback?{query}")


def _redeem(api: str, code: str) -> httpx.Response:
    return httpx.post(f"{api}/v1/auth/token", data={"grant_type": LOGIN_CODE, "code": code})


def test_sign_in_with_oidc_gives_tokens_once(api: str, provider: OidcProvider) -> None:
    config = httpx.get(f"{api}/v1/auth/config").json()
    assert config["oidc"]["enabled"] is True and config["mode"] == "required"
    back = _sign_in(api, provider, "alice", return_to="/#ask")
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert target.path == "/" and target.fragment == "ask"
    assert "access_token" not in back.headers["location"]
    code = parse_qs(target.query)["login_code"][0]
    tokens = _redeem(api, code)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["role"] == "viewer"
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    me = httpx.get(f"{api}/v1/auth/me", headers=headers).json()
    assert me["user"]["email"] == "alice@example.com"
    assert me["user"]["name"] == "Alice Liddell" and me["user"]["sso"] is True
    assert me["workspace"]["id"] == "default"
    assert (
        httpx.post(f"{api}/v1/knowledge-bases", json={"name": "x"}, headers=headers).status_code
        == 403
    )
    again = _redeem(api, code)
    assert again.status_code == 401 and "used or expired" in again.json()["detail"]

    # The second sign-in is the same account.
    code2 = parse_qs(urlsplit(_sign_in(api, provider, "alice").headers["location"]).query)
    me2 = httpx.get(
        f"{api}/v1/auth/me",
        headers={
            "Authorization": f"Bearer {_redeem(api, code2['login_code'][0]).json()['access_token']}"
        },
    ).json()
    assert me2["user"]["id"] == me["user"]["id"]


def test_unverified_email_is_not_trusted_and_password_accounts_are_not_taken_over(
    api: str, provider: OidcProvider, resources: Resources
) -> None:
    back = _sign_in(api, provider, "bob")
    code = parse_qs(urlsplit(back.headers["location"]).query)["login_code"][0]
    token = _redeem(api, code).json()["access_token"]
    me = httpx.get(f"{api}/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["user"]["email"] != "bob@example.org"
    Accounts(resources.sessions, Access.system()).create_user(
        "alice@example.com", "a long password", workspace_id="default", role=Role.owner
    )
    refused = _sign_in(api, provider, "alice")
    assert refused.status_code == 401
    assert "already exists" in refused.json()["detail"]


def test_a_forged_callback_is_refused(api: str) -> None:
    forged = httpx.get(f"{api}/v1/auth/oidc/callback", params={"code": "x", "state": "made-up"})
    assert forged.status_code == 401
    evil = httpx.get(f"{api}/v1/auth/oidc/login", params={"return_to": "//evil.example/"})
    assert evil.status_code == 422
