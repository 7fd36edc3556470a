"""`citeline probe`: the container health check of a `serve` or `worker` process.

It runs every few seconds in every container, so it imports only what it needs: run it as
`python -m citeline.cli.probe` to skip loading the whole command line."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import httpx
import redis
import typer
from rq import Worker

from citeline.jobs.queue import WORKER_TTL_SECONDS, connect
from citeline.settings import Settings


class Role(StrEnum):
    serve = "serve"
    worker = "worker"


def probe(
    role: Annotated[Role, typer.Argument(help="What this container runs.")] = Role.serve,
) -> None:
    """Exit 0 if this host's `serve` answers /health, or a worker on this host is registered
    and beating; 1 with the reason otherwise."""
    settings = Settings()
    if role is Role.serve:
        problem = _serve_problem(settings.port)
    elif settings.redis_url is None:
        problem = "CITELINE_REDIS_URL is not set: a worker probe reads the workers from Redis"
    else:
        problem = _worker_problem(settings.redis_url)
    if problem:
        typer.echo(f"unhealthy: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("ok")


def _serve_problem(port: int) -> str | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=3.0)
    except httpx.HTTPError as exc:
        return f"GET /health on port {port}: {exc}"
    return None if response.status_code == 200 else f"GET /health: HTTP {response.status_code}"


def _worker_problem(redis_url: str) -> str | None:
    host = socket.gethostname()
    client = connect(redis_url, timeout=3.0)
    try:
        workers = [w for w in Worker.all(connection=client) if w.hostname == host]
    except redis.RedisError as exc:
        return f"redis unavailable: {exc}"
    finally:
        client.close()
    now = datetime.now(UTC)
    for worker in workers:
        beat = worker.last_heartbeat
        if (
            beat is not None
            and (now - beat.replace(tzinfo=UTC)).total_seconds() < WORKER_TTL_SECONDS
        ):
            return None
    return f"no worker on host {host} has sent a heartbeat in the last {WORKER_TTL_SECONDS}s"


if __name__ == "__main__":
    typer.run(probe)
