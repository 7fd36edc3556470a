"""Engines for a benchmark run: the embedded servers in a fresh temporary data dir."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from citeline.db import migrate
from citeline.engines import Endpoints, running_engines
from citeline.knowledge.service import Upload, UploadOutcome
from citeline.knowledge.storage import scratch_dir
from citeline.resources import Resources
from citeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def bench_engines() -> Iterator[tuple[Settings, Endpoints]]:
    data_dir = Path(tempfile.mkdtemp(prefix="cl-bench-"))
    # Local mode: benchmarks measure the work, not signing in (auth_overhead measures that).
    settings = Settings(data_dir=data_dir, log_level="WARNING", log_format="text", auth="local")
    try:
        with running_engines(settings) as endpoints:
            resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
            migrate.upgrade(resources.engine)
            resources.close()
            yield (
                settings.model_copy(
                    update={
                        "database_url": endpoints.database_url,
                        "redis_url": endpoints.redis_url,
                    }
                ),
                endpoints,
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def ingest_files(
    settings: Settings, endpoints: Endpoints, kb_id: uuid.UUID, files: list[tuple[Path, str]]
) -> list[UploadOutcome]:
    """Upload `(path, source)` pairs and run them through an in-process burst worker."""
    from citeline.jobs.worker import WorkerMode
    from citeline.resources import run_worker_process

    resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
    try:
        scratch = scratch_dir(settings.data_path / "files")
        uploads = [Upload.copy_of(path, source, scratch) for path, source in files]
        outcomes = resources.knowledge().add(kb_id, uploads)
    finally:
        resources.close()
    run_worker_process(
        settings, endpoints.database_url, endpoints.redis_url, burst=True, mode=WorkerMode.inprocess
    )
    return outcomes


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITELINE_", "OTEL_"))}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"CITELINE_{name.upper()}"] = text
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    settings: Settings, *, workers: int = 0, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """A `citeline serve` on a free loopback port against the settings' engines: its URL and
    process id, once it is ready."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "citeline", "serve"],
        env=child_env(
            # One data dir per server: two may run at once against the same engines.
            settings.model_copy(
                update={
                    "port": port,
                    "workers": workers,
                    "data_dir": settings.data_path / str(port),
                }
            ),
            **(env or {}),
        ),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise SystemExit(f"serve exited with {process.returncode}")
            try:
                ready = httpx.get(f"{base}/ready" if workers else f"{base}/health", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("serve did not become ready")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(60)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms, p95 {percentile(values, 95) * 1000:.1f} ms, "
        f"mean {statistics.fmean(values) * 1000:.1f} ms (n={len(values)})"
    )


PYTHON = sys.executable
