"""Engines for a benchmark run: the embedded servers in a fresh temporary data dir."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    settings = Settings(data_dir=data_dir, log_level="WARNING", log_format="text")
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


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"CITELINE_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


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
