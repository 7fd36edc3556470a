"""Workers take jobs again after PostgreSQL restarts: attempts that RQ failed while the
database was away are pushed again by the reaper and run to the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from citeline.db import migrate
from citeline.db.embedded import EmbeddedPostgres
from citeline.db.engine import make_engine
from citeline.jobs.models import Job, JobEvent, JobState
from citeline.jobs.queue import QUEUE_NAMES, queue
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import WorkerFactory, empty_stores, fast_settings, wait_for
from tests.jobs_for_tests import TEST_KINDS

pytestmark = pytest.mark.slow


class Postgres:
    """An embedded PostgreSQL of this test's own, that it can stop and start."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pg-"))
        self.server = EmbeddedPostgres(self.directory)
        self.url = ""

    def start(self) -> None:
        url = self.server.start()
        assert self.url in ("", url), "the restarted server moved"
        self.url = url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    server = Postgres()
    server.start()
    engine = make_engine(server.url)
    migrate.upgrade(engine)
    engine.dispose()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def _states(resources: Resources) -> dict[str, int]:
    with resources.sessions() as session:
        return dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())


def test_workers_take_jobs_again_after_postgres_restarts(
    own_postgres: Postgres, redis_url: str, tmp_path: Path, start_worker: WorkerFactory
) -> None:
    # In-process workers, as `citeline worker` runs by default (fork mode passed here too,
    # and the reaper's tests in test_jobs.py run forking workers).
    settings: Settings = fast_settings(tmp_path / "data", own_postgres.url, redis_url)
    empty_stores(own_postgres.url, redis_url)
    resources = Resources.connect(settings, own_postgres.url, redis_url, job_kinds=TEST_KINDS)
    try:
        for _ in range(2):
            start_worker("inprocess", database_url=own_postgres.url, redis_url=redis_url)
        jobs = [resources.jobs().enqueue("test.work", {"seconds": 0.3}) for _ in range(30)]
        wait_for(lambda: _states(resources).get(JobState.finished.value, 0) >= 2, timeout=60)
        resources.engine.dispose()  # none of this process's connections outlive the server
        resources.events.statements.engine.dispose()
        own_postgres.stop()  # workers take jobs while the database is away; RQ fails them
        wait_for(lambda: _rq_failed(resources) >= 2, timeout=30)
        own_postgres.start()
        wait_for(
            lambda: _states(resources) == {JobState.finished.value: len(jobs)},
            timeout=90,
            interval=0.5,
        )
        with resources.sessions() as session:
            twice = session.execute(
                select(JobEvent.job_id)
                .where(JobEvent.type == "finished")
                .group_by(JobEvent.job_id)
                .having(func.count() > 1)
            ).all()
        assert twice == []
    finally:
        resources.close()


def _rq_failed(resources: Resources) -> int:
    """Copies RQ failed: their worker took them while the database was away."""
    return sum(queue(name, resources.redis).failed_job_registry.count for name in QUEUE_NAMES)
