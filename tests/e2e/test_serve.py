"""`citeline serve` as a user runs it: embedded PostgreSQL, Valkey and workers in one process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import openai
import psutil
import pytest

import tests.jobs_for_tests  # noqa: F401
from citeline.db.embedded import EmbeddedPostgres
from citeline.jobs.embedded import EmbeddedValkey
from citeline.resources import Resources
from tests.conftest import ROOT, fast_settings, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    running: ClassVar[list[Serve]] = []

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
        env.update(
            PYTHONPATH=str(ROOT),
            CITELINE_JOB_LOST_AFTER_SECONDS="2",
            CITELINE_JOB_REAPER_INTERVAL_SECONDS="0.5",
            CITELINE_LOG_FORMAT="text",
            # The default model, rebuilt once per checkout rather than once per test.
            CITELINE_MODELS_DIR=str(ROOT / ".cache" / "models"),
        )
        command = [
            sys.executable, "-m", "citeline", "serve",
            "--port", str(self.port), "--workers", str(workers), "--data-dir", str(data_dir),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=env, cwd=data_dir.parent)
        Serve.running.append(self)
        wait_for(self._healthy, timeout=60, interval=0.2)

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[psutil.Process]:
        alive = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                    alive.append(child)
            except psutil.NoSuchProcess:
                continue
        return alive

    def interrupt(self) -> int:
        """Ctrl-C, as a person at the terminal would."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cl-e2e-"))
    yield root / "data"
    while Serve.running:
        serve = Serve.running.pop()
        if serve.process.poll() is None:
            serve.interrupt()
    shutil.rmtree(root, ignore_errors=True)


def attach(data_dir: Path) -> tuple[Resources, EmbeddedPostgres, EmbeddedValkey]:
    """Connect to the embedded servers a running `serve` started."""
    postgres, valkey = EmbeddedPostgres(data_dir), EmbeddedValkey(data_dir)
    database_url, redis_url = postgres.start(), valkey.start()
    settings = fast_settings(data_dir, database_url, redis_url)
    return Resources.connect(settings, database_url, redis_url), postgres, valkey


def test_serve_runs_everything_and_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    serve = Serve(data_dir, workers=2)
    wait_for(lambda: len(serve.workers()) == 2)
    wait_for(lambda: httpx.get(f"{serve.url}/ready").status_code == 200, timeout=30)
    assert httpx.get(f"{serve.url}/docs").status_code == 200
    assert httpx.get(f"{serve.url}/openapi.json").json()["info"]["title"] == "Citeline"

    victim = serve.workers()[0]
    victim.kill()
    wait_for(
        lambda: len(serve.workers()) == 2 and victim.pid not in [w.pid for w in serve.workers()]
    )

    assert serve.interrupt() == 0
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not EmbeddedValkey(data_dir)._answers()


def test_jobs_queued_before_a_restart_run_afterwards(data_dir: Path) -> None:
    first = Serve(data_dir, workers=0)
    resources, postgres, valkey = attach(data_dir)
    try:
        ids: list[uuid.UUID] = [
            resources.jobs().enqueue("test.echo", {"value": n}).id for n in range(3)
        ]
    finally:
        resources.close()
        postgres.stop()
        valkey.stop()
    assert httpx.get(f"{first.url}/ready").status_code == 503
    assert first.interrupt() == 0

    second = Serve(data_dir, workers=1)

    def all_finished() -> bool:
        states = [httpx.get(f"{second.url}/v1/jobs/{i}").json()["state"] for i in ids]
        return states == ["finished"] * 3

    wait_for(all_finished, timeout=60, interval=0.3)
    results = [httpx.get(f"{second.url}/v1/jobs/{i}/result").json()["result"] for i in ids]
    assert [r["echo"] for r in results] == [0, 1, 2]
    assert second.interrupt() == 0


def test_second_serve_on_the_same_data_dir_is_refused(data_dir: Path) -> None:
    first = Serve(data_dir, workers=0)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "citeline", "serve", "--port", str(free_port()),
             "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert second.returncode != 0
        assert "already running" in second.stderr
    finally:
        assert first.interrupt() == 0


def test_the_default_model_answers_through_the_openai_api(data_dir: Path) -> None:
    """One command, then an OpenAI client: the bundled Qwen2.5-Coder-1.5B answers."""
    serve = Serve(data_dir, workers=1)
    client = openai.OpenAI(base_url=f"{serve.url}/v1", api_key="unused", timeout=300)
    assert "default" in {model.id for model in client.models.list()}
    completion = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=8,
        temperature=0,
    )
    assert "paris" in (completion.choices[0].message.content or "").lower()
    assert completion.model == "local@1"
    assert serve.interrupt() == 0
