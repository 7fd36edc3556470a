"""`citeline serve`: the API with, when nothing external is configured, its own PostgreSQL,
Valkey and worker pool, all stopped in order on Ctrl-C or SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import uvicorn
from fastapi import FastAPI

from citeline.api.app import create_app
from citeline.auth.access import Access
from citeline.auth.accounts import Accounts
from citeline.auth.identify import check_bind
from citeline.db import migrate
from citeline.engines import running_engines
from citeline.errors import ConfigurationError
from citeline.jobs.presence import Presence
from citeline.jobs.queue import QUEUE_NAMES, check_redis
from citeline.jobs.supervisor import WorkerPool
from citeline.llm.bundled import gguf_path
from citeline.llm.llama import cores
from citeline.llm.model_server import ModelServer, ServerSpec, SharedModel
from citeline.llm.providers.local import held_name
from citeline.observability import tracing
from citeline.resources import Resources
from citeline.settings import Settings

log = logging.getLogger(__name__)


@contextmanager
def data_dir_lock(settings: Settings) -> Iterator[None]:
    """One `serve` per data dir while it runs embedded servers: a second would fight the first
    over them. Replicas on external servers may share a data dir (a shared volume)."""
    if settings.database_url is not None and settings.redis_url is not None:
        yield
        return
    data_dir = settings.data_path
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "serve.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"another `citeline serve` is already running with the data dir {data_dir}"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield


class DrainingServer(uvicorn.Server):
    """uvicorn, ending the Server-Sent Event streams with a reconnect hint as it starts to
    shut down, before it waits for open connections to close."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(self.app.state, "stream_hub", None)
        if hub is not None:
            hub.drain()
        await super().shutdown(sockets)


def worker_environment(
    settings: Settings, database_url: str, redis_url: str, shared: SharedModel | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CITELINE_DATABASE_URL=database_url,
        CITELINE_REDIS_URL=redis_url,
        CITELINE_DATA_DIR=str(settings.data_path),
        CITELINE_LOG_LEVEL=settings.log_level,
        CITELINE_LOG_FORMAT=settings.log_format.value,
    )
    if shared is not None:
        env.update(CITELINE_LLM_SERVER_URL=shared.url, CITELINE_LLM_SERVER_KEY=shared.key)
    return env


@contextmanager
def shared_model(resources: Resources) -> Iterator[SharedModel | None]:
    """The default model's shared llama.cpp server while `serve` runs workers (see
    citeline.llm.model_server), reported loaded like a worker's model; None when off."""
    settings = resources.settings
    if not settings.llm_shared_server or settings.workers == 0:
        yield None
        return
    presence = Presence(resources.redis, settings.loaded_model_ttl_seconds)
    server = ModelServer(
        ServerSpec(
            path=gguf_path(settings.llm_model, settings.models_path),
            slots=settings.llm_server_slots or settings.workers,
            context_tokens=settings.llm_context_tokens,
            threads=settings.llm_server_threads or cores(),
            cache_ram_mib=settings.llm_cache_ram_mib,
        ),
        on_ready=lambda seconds: presence.hold(held_name(settings.llm_model), seconds),
    )
    try:
        yield server.start()
    finally:
        server.stop()
        presence.clear()


def prepare_models(resources: Resources) -> None:
    """Register the built-in model and rebuild the default GGUF now, once, rather than in
    every worker at its first request."""
    resources.models().registry.ensure_defaults()
    settings = resources.settings
    reported = -1

    def report(done: int, total: int) -> None:
        nonlocal reported
        percent = done * 100 // max(total, 1)
        if percent // 10 != reported // 10:
            reported = percent
            log.info("assembling the default model", extra={"percent": percent})

    gguf_path(settings.llm_model, settings.models_path, report)


def serve(settings: Settings) -> None:
    """Run until Ctrl-C or SIGTERM, which arrive as KeyboardInterrupt after uvicorn has drained
    its connections; the blocks below then stop the workers, Valkey and PostgreSQL in order."""
    check_bind(settings)
    tracing.configure("citeline-api")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with data_dir_lock(settings), running_engines(settings) as endpoints:
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        stack = ExitStack()
        try:
            migrate.upgrade(resources.engine)
            check_redis(resources.redis)
            prepare_models(resources)
            if (
                settings.auth == "required"
                and not Accounts(resources.sessions, Access.system()).any_users()
            ):
                log.warning(
                    "no accounts yet: make the first with `citeline users create-admin EMAIL`"
                )
            models = stack.enter_context(shared_model(resources))
            pool = WorkerPool(
                settings.workers,
                worker_environment(settings, endpoints.database_url, endpoints.redis_url, models),
                QUEUE_NAMES,
            )
            pool.start()
            try:
                app = create_app(resources)
                app.state.worker_pool = pool
                config = uvicorn.Config(
                    app,
                    host=settings.host,
                    port=settings.port,
                    log_config=None,
                    access_log=False,
                    timeout_graceful_shutdown=5,
                    proxy_headers=False,
                )
                log.info(
                    "citeline serving",
                    extra={
                        "url": f"http://{settings.host}:{settings.port}",
                        "embedded_database": endpoints.embedded_database,
                        "embedded_redis": endpoints.embedded_redis,
                        "workers": settings.workers,
                    },
                )
                DrainingServer(config, app).run()
            finally:
                log.info("stopping workers")
                pool.stop()
        finally:
            stack.close()  # the shared model server, once no worker uses it
            resources.close()
            tracing.shutdown()
    log.info("citeline stopped")
