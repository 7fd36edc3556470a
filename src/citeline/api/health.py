"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from rq import Worker
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import ResourcesDep
from citeline.db.engine import ping
from citeline.errors import ServiceUnavailable

router = APIRouter(tags=["operations"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is not ready"}})
async def ready(resources: ResourcesDep) -> JSONResponse:
    """The database and Redis answer and at least one worker is registered."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(ping, resources.engine)
        checks["database"] = "ok"
    except ServiceUnavailable as exc:
        checks["database"] = exc.detail
    try:
        workers = await run_in_threadpool(Worker.count, connection=resources.redis)
        checks["redis"] = "ok"
        checks["workers"] = "ok" if workers > 0 else "no worker is running"
    except redis.RedisError as exc:
        checks["redis"] = f"redis unavailable: {exc}"
        checks["workers"] = "unknown: redis unavailable"
    failing = {name: reason for name, reason in checks.items() if reason != "ok"}
    if failing:
        detail = "; ".join(f"{name}: {reason}" for name, reason in failing.items())
        return JSONResponse(
            {"status": "unavailable", "detail": detail, "checks": checks}, status_code=503
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's HTTP metrics, then queues and jobs from Redis."""
    own = await run_in_threadpool(generate_latest, REGISTRY)
    shared = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(own + shared, media_type=CONTENT_TYPE_LATEST)
