"""`citeline probe`, the container health check, against a real API and real workers."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from citeline.resources import Resources
from tests.conftest import WorkerFactory, settings_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.each_redis]


def probe(resources: Resources, role: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citeline.cli.probe", role],
        env={**settings_env(resources.settings), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_serve_probe_follows_health(resources: Resources, api_url: str) -> None:
    port = str(urlsplit(api_url).port)
    assert probe(resources, "serve", CITELINE_PORT=port).returncode == 0
    down = probe(resources, "serve", CITELINE_PORT="1")
    assert down.returncode == 1
    assert "unhealthy: GET /health on port 1" in down.stderr


def test_the_worker_probe_needs_a_beating_worker_on_this_host(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    missing = probe(resources, "worker")
    assert missing.returncode == 1
    assert "no worker on host" in missing.stderr
    worker = start_worker()
    wait_for(lambda: probe(resources, "worker").returncode == 0, timeout=60, interval=0.5)
    worker.terminate()
    worker.wait(30)
    assert probe(resources, "worker").returncode == 1
    refused = probe(resources, "worker", CITELINE_REDIS_URL="redis://127.0.0.1:1/0")
    assert refused.returncode == 1
    assert "redis unavailable" in refused.stderr
