"""The one place errors become HTTP responses: problem-details JSON (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from citeline.auth import audit
from citeline.auth.access import Access
from citeline.errors import (
    CitelineError,
    Forbidden,
    InvalidInput,
    ProviderError,
    RateLimited,
    Unauthorized,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://citeline.dev/problems/"


def problem(status: int, title: str, detail: str, type_: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE_BASE + type_, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CitelineError)
    if isinstance(exc, Forbidden):
        await run_in_threadpool(_audit_refusal, request, exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput) and exc.field:
        extra["errors"] = [{"field": exc.field, "message": exc.detail}]
    status = exc.status
    if isinstance(exc, ProviderError):
        status = exc.http_status
        extra["provider"] = exc.provider
        extra["retryable"] = exc.retryable
    response = problem(status, exc.title, exc.detail, exc.type_slug, **extra)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
        response.headers["RateLimit-Limit"] = str(exc.limit)
        response.headers["RateLimit-Remaining"] = "0"
        response.headers["RateLimit-Reset"] = str(exc.reset)
    elif exc.retryable:
        response.headers["Retry-After"] = "5"
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="citeline"'
    return response


def _audit_refusal(request: Request, exc: Forbidden) -> None:
    """Every privileged action refused to a signed-in caller lands in the audit log."""
    access: Access | None = getattr(request.state, "access", None)
    if access is None:
        return
    route = getattr(request.scope.get("route"), "path", request.url.path)
    entry = audit.Entry(
        "request.denied",
        access.subject,
        access.workspace_id,
        f"{request.method} {route}",
        outcome="denied",
        client=request.client.host if request.client else None,
        detail={"reason": exc.detail, "path": request.url.path},
    )
    try:
        audit.record(request.app.state.resources.sessions, entry)
    except (OperationalError, PoolTimeout) as error:
        log.warning("refusal not audited: database unavailable", extra={"error": str(error)})


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, "invalid-input", errors=errors)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    response = problem(exc.status_code, title, str(exc.detail), title.lower().replace(" ", "-"))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", extra={"error": str(exc)})
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    response = problem(
        503, "Service unavailable", f"database unavailable: {detail}", "service-unavailable"
    )
    response.headers["Retry-After"] = "5"
    return response


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable", extra={"error": str(exc)})
    response = problem(
        503, "Service unavailable", f"queue unavailable: {exc}", "service-unavailable"
    )
    response.headers["Retry-After"] = "5"
    return response


async def _bad_value(_: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (a NUL character, a number out of range) that no
    schema caught; the transaction was rolled back, so nothing was stored."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return problem(422, "Invalid input", f"a value cannot be stored: {detail}", "invalid-input")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CitelineError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DataError, _bad_value)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
