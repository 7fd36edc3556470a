"""Real engines for the tests: the embedded PostgreSQL and Valkey that Citeline starts, and
the external Redis named by CITELINE_TEST_REDIS_URL when it is set. Each test starts empty."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from citeline.db import migrate
from citeline.db.embedded import EmbeddedPostgres
from citeline.db.engine import make_engine
from citeline.jobs.embedded import EmbeddedValkey
from citeline.jobs.queue import connect
from citeline.resources import Resources
from citeline.settings import Settings
from tests.jobs_for_tests import TEST_KINDS

ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the checkout, as on every developer machine and in CI.
DEV_CORPUS = ROOT.parent / "shared" / "eval" / "debian-faq" / "corpus"


def for_this_worker(redis_url: str) -> str:
    """`redis_url` with its database number moved down by two for each pytest-xdist worker
    after the first, so that parallel workers never flush each other's keys."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    base, _, db = redis_url.rpartition("/")
    if not db.isdigit():
        raise ValueError(f"give the test Redis URL a database number: {redis_url!r}")
    moved = int(db) - 2 * worker
    if moved < 0:
        raise ValueError(f"too many test workers for the databases below {redis_url!r}")
    return f"{base}/{moved}"


_external = os.environ.get("CITELINE_TEST_REDIS_URL")
EXTERNAL_REDIS = for_this_worker(_external) if _external else None


@pytest.fixture(scope="session")
def engine_dir() -> Iterator[Path]:
    # Short: the Valkey unix socket path must stay under ~100 characters.
    path = Path(tempfile.mkdtemp(prefix="cl-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(engine_dir: Path) -> Iterator[str]:
    postgres = EmbeddedPostgres(engine_dir)
    url = postgres.start()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    postgres.stop()


@pytest.fixture(scope="session")
def embedded_redis_url(engine_dir: Path) -> Iterator[str]:
    valkey = EmbeddedValkey(engine_dir)
    url = valkey.start()
    yield url
    valkey.stop()


REDIS_BACKENDS = ["embedded", *(["external"] if EXTERNAL_REDIS else [])]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only what talks to Redis itself (the job layer, streams, limits) runs twice; every other
    # test gets the embedded Valkey, since a second run would test the same code again.
    if "redis_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "each_redis"
    ):
        metafunc.parametrize("redis_url", REDIS_BACKENDS, indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, embedded_redis_url: str) -> str:
    if getattr(request, "param", "embedded") == "external":
        assert EXTERNAL_REDIS is not None
        return EXTERNAL_REDIS
    return embedded_redis_url


def fast_settings(
    data_dir: Path, database_url: str, redis_url: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "redis_url": redis_url,
        "job_heartbeat_seconds": 0.2,
        "job_lost_after_seconds": 1.5,
        "job_reaper_interval_seconds": 0.3,
        "job_retry_backoff_seconds": 0.2,
        "sse_heartbeat_seconds": 1.0,
        "log_format": "text",
        "auth": "local",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return fast_settings(tmp_path / "data", database_url, redis_url)


def empty_stores(database_url: str, redis_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE jobs, job_events, knowledge_bases, chunk_terms, model_versions, "
                "model_aliases, generations, token_usage, conversations, "
                "conversation_turns, users, memberships, refresh_tokens, api_keys, invitations, "
                "job_groups, reports, report_sections, report_exports, audit_events, "
                "agents, agent_tasks, agent_task_steps, mcp_servers, mcp_tool_policies, "
                "assistant_conversations CASCADE"
            )
        )
        connection.execute(text("DELETE FROM workspaces WHERE id <> 'default'"))
        for (name,) in connection.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_chunks_hnsw_%'")
        ):
            connection.execute(text(f"DROP INDEX {name}"))
    engine.dispose()
    client = connect(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def resources(settings: Settings) -> Iterator[Resources]:
    assert settings.database_url is not None and settings.redis_url is not None
    empty_stores(settings.database_url, settings.redis_url)
    opened = Resources.connect(
        settings, settings.database_url, settings.redis_url, job_kinds=TEST_KINDS
    )
    yield opened
    opened.close()


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
    values = settings.model_dump(mode="json")
    # JSON dumps show secrets as "**********"; a child process needs the real ones.
    for name in type(settings).model_fields:
        secret = _revealed(getattr(settings, name))
        if secret is not None:
            values[name] = secret
    for name, value in values.items():
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"CITELINE_{name.upper()}"] = text
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _revealed(value: object) -> object:
    """The secrets `value` holds, in the clear as JSON values; None if it holds none."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict) and value and all(isinstance(v, SecretStr) for v in value.values()):
        return {key: item.get_secret_value() for key, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, SecretStr) for v in value):
        return [item.get_secret_value() for item in value]
    return None


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[WorkerFactory]:
    """Start real `citeline worker` processes (each in its own process group)."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(mode: str = "fork", **overrides: object) -> subprocess.Popen[bytes]:
        env = settings_env(settings.model_copy(update=overrides))
        process = subprocess.Popen(
            [sys.executable, "-m", "citeline", "worker", "--mode", mode],
            env=env,
            start_new_session=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05
) -> object:
    """Poll until `predicate` returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class LiveServer:
    """A real uvicorn serving an app on a loopback port, in a thread of the test process."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")  # type: ignore[arg-type]
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=15)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def api_url(resources: Resources) -> Iterator[str]:
    from citeline.api.app import create_app

    with LiveServer(create_app(resources)) as url:
        yield url


def read_sse(lines: Iterator[str], limit: int | None = None) -> list[dict[str, str]]:
    """Parse Server-Sent Events from an iterator of lines, stopping after `limit` events."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                events.append(current)
                if limit is not None and len(events) >= limit:
                    break
            current = {}
        elif line.startswith(":"):
            current.setdefault("comments", "")
            current["comments"] += line
        else:
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    return events
