"""What the end-to-end tests share: a real `citeline serve` on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, sync_playwright

from citeline.db.embedded import EmbeddedPostgres
from citeline.jobs.embedded import EmbeddedValkey
from citeline.resources import Resources
from tests.conftest import ROOT, fast_settings, wait_for
from tests.jobs_for_tests import TEST_KINDS

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: scripts/test.sh installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    running: ClassVar[list[Serve]] = []

    def __init__(self, data_dir: Path, workers: int, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
        env.update(
            PYTHONPATH=str(ROOT),
            CITELINE_JOB_LOST_AFTER_SECONDS="2",
            CITELINE_JOB_REAPER_INTERVAL_SECONDS="0.5",
            CITELINE_LOG_FORMAT="text",
            CITELINE_AUTH="local",
            # The default model, rebuilt once per checkout rather than once per test.
            CITELINE_MODELS_DIR=str(ROOT / ".cache" / "models"),
        )
        env.update(extra_env)
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
    resources = Resources.connect(settings, database_url, redis_url, job_kinds=TEST_KINDS)
    return resources, postgres, valkey
