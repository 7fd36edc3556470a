"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

import redis
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from rq import Worker
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import ResourcesDep
from citeline.db.engine import ping
from citeline.errors import ServiceUnavailable

router = APIRouter(tags=["operations"])


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]
    detail: str | None = None


@router.get("/health")
def health() -> HealthOut:
    """The process is up."""
    return HealthOut()


@router.get(
    "/ready",
    responses={503: {"model": ReadyOut, "description": "a dependency is not ready"}},
    response_model_exclude_none=True,
)
async def ready(resources: ResourcesDep, request: Request, response: Response) -> ReadyOut:
    """This replica can take requests: the database and Redis answer and it is not stopping.
    Whether any worker is registered is reported in `checks.workers`."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(ping, resources.engine)
        checks["database"] = "ok"
    except ServiceUnavailable as exc:
        checks["database"] = exc.detail
    workers = "unknown: redis unavailable"
    try:
        count = await run_in_threadpool(Worker.count, connection=resources.redis)
        checks["redis"] = "ok"
        workers = "ok" if count > 0 else "no worker is running: jobs wait in the queue"
    except redis.RedisError as exc:
        checks["redis"] = f"redis unavailable: {exc}"
    hub = getattr(request.app.state, "stream_hub", None)
    checks["serving"] = "draining: this server is stopping" if hub and hub.draining else "ok"
    # Workers are reported, not required: an API replica taken out of service because the
    # workers are restarting would turn a queue backlog into an outage.
    failing = {name: reason for name, reason in checks.items() if reason != "ok"}
    checks["workers"] = workers
    if failing:
        response.status_code = 503
        detail = "; ".join(f"{name}: {reason}" for name, reason in failing.items())
        return ReadyOut(status="unavailable", detail=detail, checks=checks)
    return ReadyOut(status="ready", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's HTTP metrics, then queues and jobs from Redis."""
    own = await run_in_threadpool(generate_latest, REGISTRY)
    shared = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(own + shared, media_type=CONTENT_TYPE_LATEST)
