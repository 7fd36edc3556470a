"""`citeline serve` as a user runs it: embedded PostgreSQL, Valkey and workers in one process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import openai
import psutil
import pytest

from citeline.jobs.embedded import EmbeddedValkey
from citeline.llm.model_server import NICENESS
from tests.conftest import wait_for
from tests.e2e import http
from tests.e2e.conftest import Serve, attach, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_serve_runs_everything_and_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    serve = Serve(data_dir, workers=2)
    wait_for(lambda: len(serve.workers()) == 2)
    wait_for(lambda: http.get(f"{serve.url}/ready").status_code == 200, timeout=30)
    assert http.get(f"{serve.url}/docs").status_code == 200
    assert http.get(f"{serve.url}/openapi.json").json()["info"]["title"] == "Citeline"

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
    ready = http.get(f"{first.url}/ready")
    assert ready.status_code == 200  # the API serves; the jobs wait for a worker
    assert "no worker is running" in ready.json()["checks"]["workers"]
    assert first.interrupt() == 0

    second = Serve(data_dir, workers=1)

    def all_finished() -> bool:
        states = [http.get(f"{second.url}/v1/jobs/{i}").json()["state"] for i in ids]
        return states == ["finished"] * 3

    wait_for(all_finished, timeout=60, interval=0.3)
    results = [http.get(f"{second.url}/v1/jobs/{i}/result").json()["result"] for i in ids]
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
    """One command, then an OpenAI client: the bundled Qwen2.5-Coder-1.5B answers, from the
    one model server every worker shares."""
    serve = Serve(data_dir, workers=2)
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
    children = psutil.Process(serve.process.pid).children()
    servers = [c for c in children if "model-server" in c.cmdline()]
    assert len(servers) == 1
    assert _maps_a_model(servers[0])
    # It takes every core, below the API's and the workers' priority.
    assert servers[0].nice() >= psutil.Process(serve.process.pid).nice() + NICENESS
    wait_for(lambda: len(serve.workers()) == 2)
    assert not any(_maps_a_model(worker) for worker in serve.workers())
    assert serve.interrupt() == 0
    assert not servers[0].is_running()


def _maps_a_model(process: psutil.Process) -> bool:
    return any(region.path.endswith(".gguf") for region in process.memory_maps())
