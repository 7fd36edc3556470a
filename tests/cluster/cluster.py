"""A Citeline cluster on network namespaces: a database host (PostgreSQL and Valkey), API
hosts and worker hosts, all pointed at the same database, Redis and shared data dir."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rq import Worker

from citeline.auth.access import Access, Role
from citeline.auth.api_keys import ApiKeys
from citeline.db import migrate
from citeline.jobs.models import JobState
from citeline.resources import Resources
from citeline.settings import Settings
from tests.cluster.network import Host, Network
from tests.cluster.services import Postgres, Valkey, citeline_env, start_api, start_worker
from tests.conftest import ROOT, settings_env, wait_for
from tests.jobs_for_tests import TEST_KINDS


@dataclass
class Cluster:
    network: Network
    directory: Path
    postgres: Postgres
    valkey: Valkey
    settings: Settings
    env: dict[str, str]
    apis: dict[str, Host] = field(default_factory=dict)
    workers: dict[str, Host] = field(default_factory=dict)
    resources: Resources | None = None
    api_key: str = ""

    @property
    def root(self) -> Resources:
        assert self.resources is not None
        return self.resources

    def api_url(self, name: str) -> str:
        return f"http://{self.apis[name].address}:8000"

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url(name),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10.0,
        )

    def start_api(self, name: str) -> None:
        start_api(self.apis[name], self.env, self.directory / f"{name}.log")

    def start_worker(self, name: str) -> None:
        """Start the worker on host `name` and wait until it has registered with Redis."""
        host = self.workers[name]
        process = start_worker(host, self.env, self.directory / f"{name}.log")

        def registered() -> bool:
            if process.poll() is not None:
                log = tail(self.directory / f"{name}.log")
                raise AssertionError(f"worker on {name} exited at start:\n{log}")
            return process.pid in {w.pid for w in Worker.all(connection=self.root.redis)}

        wait_for(registered, timeout=120, interval=0.2)

    def ready(self, name: str) -> bool:
        try:
            return httpx.get(f"{self.api_url(name)}/ready", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self.resources is not None:
            self.resources.close()
        self.network.close()
        kept = ROOT / "test-artifacts" / "cluster" / "logs"
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        logs = [*self.directory.glob("*.log"), *self.directory.glob("*/*.log")]
        for log in logs:
            shutil.copy(log, kept / log.name)
        shutil.rmtree(self.directory, ignore_errors=True)


def make_cluster(api_count: int = 2, worker_count: int = 3) -> Cluster:
    directory = Path(tempfile.mkdtemp(prefix="citeline-cluster-"))
    directory.chmod(0o755)  # PostgreSQL runs as another user
    network = Network()
    try:
        db = network.add("db", 2)
        postgres = Postgres(db, directory / "postgres")
        postgres.start()
        postgres.create_database()
        valkey = Valkey(db, directory / "valkey", secrets.token_hex(16))
        valkey.start()
        settings = Settings(
            data_dir=directory / "data",
            database_url=postgres.url,
            redis_url=valkey.url,
            auth="required",
            jwt_secret=secrets.token_hex(32),
            llm_model="smollm2-135m",
            log_format="text",
            job_heartbeat_seconds=0.5,
            job_lost_after_seconds=3.0,
            job_reaper_interval_seconds=0.5,
            job_retry_backoff_seconds=0.2,
            sse_heartbeat_seconds=1.0,
            worker_stop_seconds=5.0,
            rate_limit_api_key_per_minute=0,
            rate_limit_global_per_minute=0,
        )
        cluster = Cluster(
            network, directory, postgres, valkey, settings,
            citeline_env(settings_env(settings), directory / "data"),
        )  # fmt: skip
        resources = Resources.connect(settings, postgres.url, valkey.url, job_kinds=TEST_KINDS)
        cluster.resources = resources
        migrate.upgrade(resources.engine)
        keys = ApiKeys(resources.sessions, Access("system", "default", Role.owner))
        _, cluster.api_key = keys.create("cluster-test", Role.owner)
        for index in range(api_count):
            cluster.apis[f"api{index + 1}"] = network.add(f"api{index + 1}", 11 + index)
        for index in range(worker_count):
            cluster.workers[f"w{index + 1}"] = network.add(f"w{index + 1}", 21 + index)
        for name in cluster.workers:
            cluster.start_worker(name)
        for name in cluster.apis:
            cluster.start_api(name)
        for name in cluster.apis:
            wait_for(lambda name=name: cluster.ready(name), timeout=120, interval=0.5)  # type: ignore[misc]
        return cluster
    except BaseException:
        network.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise


def running_on(cluster: Cluster, host: Host) -> tuple[uuid.UUID, int] | None:
    """The Citeline job (and attempt) the worker on `host` is running, if any."""
    pids = set(host.pids())
    for worker in Worker.all(connection=cluster.root.redis):
        if worker.pid in pids:
            job = worker.get_current_job()
            if job is not None and len(job.args) == 3:
                return uuid.UUID(str(job.args[0])), int(job.args[1])
    return None


def moved_on(cluster: Cluster, job_id: uuid.UUID, attempt: int) -> bool:
    """The job runs (or ran) a later attempt, or ended."""
    job = cluster.root.jobs().get(job_id)
    return job.attempt > attempt or JobState(job.state).terminal


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def run_quietly(*command: str) -> None:
    subprocess.run(list(command), capture_output=True, check=False, timeout=30)


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 2)
