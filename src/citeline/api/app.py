"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from prometheus_client import CollectorRegistry

from citeline import __version__
from citeline.agent_builder.router import router as builder_router
from citeline.agent_builder.router import short as builder_short_router
from citeline.agents.router import gateway as agents_gateway_router
from citeline.agents.router import router as agents_router
from citeline.answers.router import router as answers_router
from citeline.api import errors
from citeline.api.deps import get_access
from citeline.api.gateway import RequestLimits, SameOrigin, SecurityHeaders
from citeline.api.health import router as health_router
from citeline.api.middleware import RequestContext
from citeline.assistant.router import router as assistant_router
from citeline.assistant.router import socket as assistant_socket
from citeline.auth.identify import Gatekeeper
from citeline.auth.ratelimit import RateLimits
from citeline.auth.router import public as auth_public_router
from citeline.auth.router import router as auth_router
from citeline.auth.signin import SignIn
from citeline.jobs.metrics import QueueCollector
from citeline.jobs.queue import connect_async
from citeline.jobs.router import router as jobs_router
from citeline.jobs.stream import StreamHub
from citeline.knowledge.router import router as knowledge_router
from citeline.llm.openai_api import router as openai_router
from citeline.llm.router import gateway as model_gateway_router
from citeline.llm.router import router as models_router
from citeline.mcp.router import router as mcp_router
from citeline.mcp_server import install as install_mcp
from citeline.reports.router import router as reports_router
from citeline.resources import Resources
from citeline.web.router import install as install_web


def create_app(resources: Resources) -> FastAPI:
    """An app serving `resources`; the caller owns them and closes them after the app stops."""
    settings = resources.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Blocking XREADs must outlive the SSE heartbeat interval, so this client's timeout does.
        connection = connect_async(resources.redis_url, timeout=settings.sse_heartbeat_seconds + 10)
        app.state.stream_hub = StreamHub(connection, settings.sse_heartbeat_seconds)
        try:
            async with mcp.running():
                yield
        finally:
            await connection.aclose()

    app = FastAPI(
        # Server spans when tracing is on (observability.tracing); no-ops otherwise.
        telemetry={"operation_spans": False, "metrics": False, "logs": False},
        title="Citeline",
        version=__version__,
        description="Answers, reports and agents whose every sentence cites its source.",
        lifespan=lifespan,
    )
    app.state.resources = resources
    app.state.settings = settings
    limits = RateLimits(resources.redis, settings)
    signin = SignIn(resources.sessions, resources.redis, settings)
    app.state.gatekeeper = Gatekeeper(signin, limits, settings)
    app.state.metrics_registry = CollectorRegistry()
    app.state.metrics_registry.register(QueueCollector(resources.redis))

    errors.install(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Last-Event-ID",
                "X-Conversation-Id",
                # What a browser's MCP client sends to /mcp.
                "Mcp-Protocol-Version",
                "Mcp-Method",
                "Mcp-Name",
            ],
            expose_headers=["X-Request-Id", "X-Job-Id", "X-Conversation-Id"],
        )
    app.add_middleware(SameOrigin, allowed_origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        RequestLimits,
        max_bytes=settings.max_request_bytes,
        max_parsed_bytes=settings.max_json_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(RequestContext)
    # Public: health, metrics, the web page and signing in. Everything else needs an Access,
    # and a router added later is protected by being added here.
    app.include_router(health_router)
    app.include_router(auth_public_router)
    install_web(app)
    signed_in = [Depends(get_access)]
    for router in (
        auth_router,
        jobs_router,
        knowledge_router,
        models_router,
        model_gateway_router,
        answers_router,
        reports_router,
        openai_router,
        builder_router,
        builder_short_router,
        agents_router,
        agents_gateway_router,
        mcp_router,
        assistant_router,
    ):
        app.include_router(router, dependencies=signed_in)
    app.include_router(assistant_socket)  # authenticates in its handler (`socket_access`)
    # MCP at /mcp: identified like the routers above (api.deps.get_access).
    mcp = install_mcp(app, resources, get_access)
    return app
