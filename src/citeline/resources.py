"""The connections one Citeline process holds, and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth.access import Access
from citeline.db.engine import make_engine, make_sessionmaker
from citeline.jobs.events import EventLog
from citeline.jobs.lifecycle import Lifecycle
from citeline.jobs.queue import connect
from citeline.jobs.reaper import Reaper
from citeline.jobs.registry import register_domain_kinds
from citeline.jobs.service import JobService
from citeline.settings import Settings

if TYPE_CHECKING:
    from citeline.answers.service import AnswerService
    from citeline.auth.accounts import Accounts
    from citeline.knowledge.service import KnowledgeService
    from citeline.llm.service import ModelService


@dataclass
class Resources:
    settings: Settings
    database_url: str
    redis_url: str
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    events: EventLog
    lifecycle: Lifecycle

    @classmethod
    def connect(
        cls,
        settings: Settings,
        database_url: str,
        redis_url: str,
        *,
        redis_timeout: float | None = 5.0,
        pool_size: int = 10,
        wait_for_flush: bool = True,
    ) -> Resources:
        register_domain_kinds()
        engine = make_engine(database_url, pool_size=pool_size, wait_for_flush=wait_for_flush)
        sessions = make_sessionmaker(engine)
        connection = connect(redis_url, timeout=redis_timeout)
        events = EventLog(sessions, connection, settings.job_event_stream_ttl_seconds)
        lifecycle = Lifecycle(
            sessions, connection, events, backoff_seconds=settings.job_retry_backoff_seconds
        )
        return cls(
            settings, database_url, redis_url, engine, sessions, connection, events, lifecycle
        )

    # Services act for `access`; without one they act as the system itself, which sees every
    # workspace (workers, the CLI on the server's machine).

    def jobs(self, access: Access | None = None) -> JobService:
        return JobService(
            self.sessions,
            self.redis,
            self.events,
            self.lifecycle,
            self.settings,
            access or Access.system(),
        )

    def knowledge(self, access: Access | None = None) -> KnowledgeService:
        from citeline.knowledge.service import KnowledgeService
        from citeline.knowledge.storage import FileStore

        return KnowledgeService(
            self.sessions,
            self.jobs(access),
            FileStore(self.settings.data_path / "files"),
            self.settings,
            access=access or Access.system(),
        )

    def answers(self, access: Access | None = None) -> AnswerService:
        from citeline.answers.service import AnswerService

        return AnswerService(self.sessions, self.jobs(access), self.knowledge(access))

    def models(self, access: Access | None = None) -> ModelService:
        from citeline.llm.service import ModelService

        return ModelService(self.sessions, self.redis, self.settings, access or Access.system())

    def accounts(self, access: Access | None = None) -> Accounts:
        from citeline.auth.accounts import Accounts
        from citeline.auth.revocations import Revocations

        revocations = Revocations(self.redis, self.settings.access_token_minutes * 60)
        return Accounts(self.sessions, access or Access.system(), revocations)

    def reaper(self) -> Reaper:
        return Reaper(self.sessions, self.redis, self.events, self.lifecycle, self.settings)

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()
