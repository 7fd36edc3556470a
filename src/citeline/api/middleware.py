"""ASGI middleware: a request id on every request and log line, and HTTP metrics.

Written as plain ASGI (not BaseHTTPMiddleware) so streamed responses such as SSE pass through
untouched."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeline.observability.logs import request_id_var
from citeline.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("citeline.http")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *_rate_limit_headers(scope, message),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )
            request_id_var.reset(token)


def _rate_limit_headers(scope: Scope, message: Message) -> list[tuple[bytes, bytes]]:
    """The caller's remaining allowance, which `get_access` left in the request state."""
    quota = scope.get("state", {}).get("rate_quota")
    if quota is None or message["status"] == 429:
        return []
    return [(k.lower().encode(), v.encode()) for k, v in quota.headers().items()]


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics do not grow a label per job id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
