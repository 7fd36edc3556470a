"""Gateway middleware: limits on headers and bodies that refuse early, security headers, and
CORS for configured origins only. Plain ASGI, so streamed responses pass through untouched."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEMS = "https://citeline.dev/problems/"

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    # The UI loads only its own modules and styles; no inline script can run.
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


class RequestLimits:
    """Refuses headers over `max_header_bytes` (431), and a body over its limit (413): at once
    when Content-Length says so, otherwise as soon as the streamed bytes pass it. Multipart
    uploads, which are spooled to disk, may be up to `max_bytes`; every other body (JSON,
    forms), which is parsed whole in memory, up to `max_parsed_bytes`."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_parsed_bytes: int, max_header_bytes: int
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_parsed_bytes = max_parsed_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > self.max_header_bytes:
            await _problem(
                send,
                431,
                "Request header fields too large",
                f"the request headers are {header_bytes / 1024:.0f} KiB, over the "
                f"{self.max_header_bytes / 1024:.0f} KiB limit (CITELINE_MAX_HEADER_BYTES)",
            )
            return
        fields = dict(headers)
        multipart = fields.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit, setting = (
            (self.max_bytes, "CITELINE_MAX_REQUEST_BYTES")
            if multipart
            else (self.max_parsed_bytes, "CITELINE_MAX_JSON_BYTES")
        )
        declared = fields.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit, setting)
            return
        seen = 0
        started = refused = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 already went out; what the app says after it is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not started and not refused:
                        refused = True
                        await self._refuse(send, seen, limit, setting, more=True)
                    # The app stops reading as if the client had gone.
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, guarded_send)

    async def _refuse(
        self, send: Send, size: int, limit: int, setting: str, *, more: bool = False
    ) -> None:
        over = "over " if more else ""
        await _problem(
            send,
            413,
            "Payload too large",
            f"the request body is {over}{_size(size)}, over the {_size(limit)} limit ({setting})",
        )


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.0f} MiB"
    return f"{count / 1024:.0f} KiB"


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    slug = title.lower().replace(" ", "-")
    body = json.dumps(
        {"type": PROBLEMS + slug, "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class SameOrigin:
    """Refuses a state-changing request that a browser sent from another site.

    Any page the user visits can make their browser send a form POST (no CORS preflight) to
    Citeline, and in local mode that request is signed in. Browsers name the page's origin in
    `Origin` (or, failing that, `Referer`); the request goes on only when that is this server
    (the Host it was sent to) or one of `CITELINE_CORS_ORIGINS`. Clients that are not browsers
    send neither header and are not affected."""

    def __init__(self, app: ASGIApp, *, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = {_origin_key(origin) for origin in allowed_origins} - {None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # A WebSocket is never preflighted: a page elsewhere could open one signed in.
            await self._socket(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        claimed = headers.get(b"origin") or headers.get(b"referer")
        if claimed is None:
            await self.app(scope, receive, send)
            return
        source = claimed.decode("latin-1").strip()
        key = _origin_key(source)
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        if key is not None and (key in self.allowed or _same_host(key, host)):
            await self.app(scope, receive, send)
            return
        shown = source if len(source) <= 200 else source[:200] + "…"
        await _problem(
            send,
            403,
            "Cross-site request refused",
            f"a {scope['method']} from {shown} was refused: only pages of this server (or of "
            "CITELINE_CORS_ORIGINS) may change anything here",
        )

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        claimed = headers.get(b"origin")
        if claimed is not None:
            key = _origin_key(claimed.decode("latin-1").strip())
            host = headers.get(b"host", b"").decode("latin-1").strip().lower()
            if key is None or not (key in self.allowed or _same_host(key, host)):
                await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


def _origin_key(value: str) -> tuple[str, int] | None:
    """(host, port) of an origin or URL; None for `null` and anything unparsable."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def _same_host(origin: tuple[str, int], host: str) -> bool:
    """Whether the page's origin is the host the request was sent to. A Host without a port
    came to a default port of either scheme (a proxy that ends TLS forwards https as http)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return False
    if parts.hostname is None or parts.hostname != origin[0]:
        return False
    return origin[1] == port if port is not None else origin[1] in DEFAULT_PORTS.values()
