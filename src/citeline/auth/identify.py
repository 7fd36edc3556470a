"""Turning a request into an `Access`: its bearer credential, or the local user in local
mode; then counting it against the rate limits."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection, Request

from citeline.auth.access import DEFAULT_WORKSPACE, Access
from citeline.auth.accounts import Accounts
from citeline.auth.api_keys import looks_like_key
from citeline.auth.ratelimit import Quota, RateLimits
from citeline.auth.signin import SignIn
from citeline.auth.throttle import client_address, trusted_networks
from citeline.errors import ConfigurationError, Unauthorized
from citeline.settings import Settings

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class Gatekeeper:
    def __init__(self, signin: SignIn, limits: RateLimits, settings: Settings) -> None:
        self.signin = signin
        self.limits = limits
        self.settings = settings
        self._local: Access | None = None
        self._proxies = trusted_networks(settings.trusted_proxies)

    def client(self, request: Request) -> str:
        """The client's address, as the peer or a trusted proxy in front of it reports it."""
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self._proxies)

    def identify(self, request: HTTPConnection) -> tuple[Access, Quota | None]:
        header = request.headers.get("authorization") or _socket_bearer(request)
        workspace = request.headers.get("x-workspace") or None
        if header:
            scheme, _, credential = header.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise Unauthorized("send `Authorization: Bearer <access token or API key>`")
            try:
                access = self.signin.access(credential.strip(), workspace)
            except Unauthorized:
                # OpenAI clients must send some key; in local mode any will do, except one
                # that is a Citeline credential (a key or a token), which must be valid.
                if self.settings.auth != "local" or _ours(credential.strip()):
                    raise
                _require_loopback_host(request)
                access = self.local_access(workspace)
        elif self.settings.auth == "local":
            _require_loopback_host(request)
            access = self.local_access(workspace)
        else:
            raise Unauthorized(
                "sign in first: send `Authorization: Bearer <access token or API key>`"
            )
        return access, self.limits.hit(access)

    def local_access(self, workspace: str | None = None) -> Access:
        if self._local is None:
            user = Accounts(self.signin.sessions, Access.system()).ensure_local_user()
            self._local = self.signin.user_access(user.id, DEFAULT_WORKSPACE)
        if workspace in (None, self._local.workspace_id):
            return self._local
        assert self._local.user_id is not None
        return self.signin.user_access(self._local.user_id, workspace)


def _ours(credential: str) -> bool:
    return looks_like_key(credential) or credential.count(".") == 2


def _socket_bearer(connection: HTTPConnection) -> str | None:
    """A browser cannot set headers on a WebSocket: it offers the credential as a subprotocol
    `bearer.<token or key>` instead (and `citeline`, the one the server picks)."""
    if connection.scope["type"] != "websocket":
        return None
    offered = connection.headers.get("sec-websocket-protocol") or ""
    for protocol in (p.strip() for p in offered.split(",")):
        if protocol.startswith("bearer."):
            return "Bearer " + protocol.removeprefix("bearer.")
    return None


def _require_loopback_host(request: HTTPConnection) -> None:
    """Local mode trusts whoever reaches it, so it must be reached as localhost: a web page
    elsewhere that rebinds its own name to 127.0.0.1 sends its own name as the Host."""
    host = (request.url.hostname or "").strip("[]")
    if host not in LOOPBACK_NAMES:
        raise Unauthorized(
            f"local mode answers only requests addressed to localhost, not to {host!r}"
        )


def check_bind(settings: Settings) -> None:
    """Refuse to serve without authentication on anything but loopback."""
    if settings.auth != "local":
        return
    host = settings.host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"CITELINE_AUTH=local signs everyone in as the local user, so it may only bind to "
            f"loopback (127.0.0.1, ::1 or localhost), not {settings.host}. Use "
            "CITELINE_AUTH=required with `citeline users create-admin`, or bind to 127.0.0.1."
        )
