"""A real OpenID provider for the tests: the certified `oidc-provider` from npm, run with Node on
a loopback port (tests/oidc/provider.mjs), with one confidential and one public client."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "citeline"
PUBLIC_CLIENT_ID = "citeline-public"
# Never requested: `login` stops at the redirect that carries the code.
REDIRECT_URI = "http://127.0.0.1:8000/auth/oidc/callback"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "email_verified": True, "name": "Alice Liddell"},
    "bob": {"email": "bob@example.org", "email_verified": False, "name": "Bob Builder"},
}


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    public_client_id: str
    redirect_uri: str

    def login(self, authorize_url: str, user: str) -> str:
        """Sign `user` in and consent, as a browser would; return the callback URL (with code
        and state) without requesting it."""
        with httpx.Client(timeout=10) as browser:
            url = authorize_url
            for _ in range(10):
                response = browser.get(url)
                if response.status_code == 200:  # devInteractions' login, then consent page
                    prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
                    assert prompt, f"no interaction form at {url}: {response.text[:500]}"
                    form = {"prompt": prompt[1], "login": user, "password": "any"}
                    response = browser.post(url, data=form)
                assert response.is_redirect, f"{response.status_code} at {url}: {response.text}"
                url = str(response.url.join(response.headers["location"]))
                if url.startswith(self.redirect_uri + "?"):
                    return url
        raise AssertionError(f"no redirect to {self.redirect_uri} after 10 steps (at {url})")

    def tamper_next_id_token(
        self, claims: dict[str, Any] | None = None, *, alg: str = "RS256", key: str = "provider"
    ) -> None:
        """Make the next token response carry a re-signed ID token: `claims` merged in (None
        deletes one), signed with `alg` ("none", "HS256" with the client secret, or RS256) and
        `key` ("provider" or "stranger", a key with the provider's kid)."""
        body = {"claims": claims or {}, "alg": alg, "key": key}
        httpx.post(f"{self.issuer}/test/next-id-token", json=body).raise_for_status()


@contextmanager
def run_oidc_provider() -> Iterator[OidcProvider]:
    """Start the provider (installing its node_modules when missing); stop it on exit."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the OIDC provider needs Node.js, which is not installed")
    _install()
    workdir = Path(tempfile.mkdtemp(prefix="cl-oidc-"))
    ready, log = workdir / "issuer", workdir / "provider.log"
    secret = secrets.token_urlsafe(24)
    config = {
        "clients": [
            {"client_id": CLIENT_ID, "client_secret": secret, "redirect_uris": [REDIRECT_URI]},
            {
                "client_id": PUBLIC_CLIENT_ID,
                "token_endpoint_auth_method": "none",
                "redirect_uris": [REDIRECT_URI],
            },
        ],
        "accounts": ACCOUNTS,
        "readyFile": str(ready),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [node, "provider.mjs"],
            cwd=OIDC_DIR,
            env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: process.poll() is not None or _read(ready), timeout=30)
        if process.poll() is not None:
            raise RuntimeError(f"the OIDC provider exited:\n{log.read_text()}")
        issuer = _read(ready)
        wait_for(lambda: _answers(f"{issuer}/.well-known/openid-configuration"), timeout=30)
        yield OidcProvider(issuer, CLIENT_ID, secret, PUBLIC_CLIENT_ID, REDIRECT_URI)
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    with run_oidc_provider() as provider:
        yield provider


def _install() -> None:
    if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("tests/oidc/node_modules is missing and npm is not installed to run npm ci")
    command = [npm, "ci", "--prefix", str(OIDC_DIR), "--no-audit", "--no-fund"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        pytest.skip(f"tests/oidc/node_modules is missing and npm ci failed: {result.stderr[-800:]}")


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
