"""The composition root: the connections one Citeline process holds, every domain's job kinds,
and the services built on them. It is the one module that knows every layer; nothing below it
(domains, the job layer, the database layer) imports it.

See docs/adr/0001-composition-root.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from citeline import agents, answers, assistant, knowledge, llm, reports
from citeline.agent_builder import BuilderService, CompletedSessions, ToolInfo, ToolSource
from citeline.agents import AgentDeps, AgentService, BuilderSessions, ExternalTools, ToolOutcome
from citeline.answers.pipeline import AnswerDeps
from citeline.answers.service import AnswerService
from citeline.assistant import AssistantDeps, AssistantService, Toolbox
from citeline.auth.access import Access, Role
from citeline.auth.accounts import Accounts
from citeline.auth.revocations import Revocations
from citeline.auth.signin import SignIn
from citeline.db import migrate
from citeline.db.engine import Statements, make_engine, make_sessionmaker
from citeline.errors import Unauthorized
from citeline.jobs.events import EventLog
from citeline.jobs.lifecycle import Lifecycle
from citeline.jobs.presence import Presence
from citeline.jobs.queue import QUEUE_NAMES, check_redis, connect
from citeline.jobs.reaper import Reaper
from citeline.jobs.registry import JobKind, JobRegistry
from citeline.jobs.runtime import JobRuntime
from citeline.jobs.service import JobService
from citeline.jobs.worker import WorkerMode, run_worker
from citeline.knowledge.service import KnowledgeDeps, KnowledgeService
from citeline.llm.providers.base import Lease
from citeline.llm.providers.local import report_loads
from citeline.llm.service import ModelService
from citeline.mcp import ApprovingToolbox, McpServers, McpToolbox
from citeline.mcp.secrets import SecretBox
from citeline.reports import ReportDeps, ReportService
from citeline.settings import Settings
from citeline.storage import ObjectStore, store_for

# Every domain's job kinds; a new domain adds its own here.
JOB_KINDS: tuple[JobKind, ...] = (
    *knowledge.JOB_KINDS,
    *llm.JOB_KINDS,
    *answers.JOB_KINDS,
    *reports.JOB_KINDS,
    *agents.JOB_KINDS,
    *assistant.JOB_KINDS,
)


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
    registry: JobRegistry
    store: ObjectStore  # uploaded originals and exports, local or S3 (CITELINE_STORAGE_BACKEND)
    # Where the agent builder finds each workspace's tools beyond the built-in ones.
    builder_tool_sources: tuple[ToolSource, ...] = ()
    # Hooks other domains fill once they exist: tools beyond the built-in ones (MCP), and the
    # agent builder's completed sessions.
    external_tools: ExternalTools | None = field(default=None)
    builder_sessions: BuilderSessions | None = field(default=None)

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
        job_kinds: Sequence[JobKind] = (),
    ) -> Resources:
        """Connect to the database and Redis; `job_kinds` adds kinds beyond the domains' own
        (tests and benchmarks register theirs)."""
        engine = make_engine(database_url, pool_size=pool_size, wait_for_flush=wait_for_flush)
        sessions = make_sessionmaker(engine)
        connection = connect(redis_url, timeout=redis_timeout)
        hot = make_engine(
            database_url, pool_size=pool_size, wait_for_flush=wait_for_flush, pre_ping=False
        )
        events = EventLog(
            sessions, connection, settings.job_event_stream_ttl_seconds, Statements(hot)
        )
        lifecycle = Lifecycle(
            sessions, connection, events, backoff_seconds=settings.job_retry_backoff_seconds
        )
        registry = JobRegistry((*JOB_KINDS, *job_kinds))
        resources = cls(
            settings,
            database_url,
            redis_url,
            engine,
            sessions,
            connection,
            events,
            lifecycle,
            registry,
            store_for(settings),
            builder_sessions=CompletedSessions(sessions),
        )
        mcp_tools = AgentMcpTools(resources.mcp_toolbox)
        resources.external_tools = mcp_tools
        resources.builder_tool_sources = (mcp_tools.infos,)
        return resources

    # Services act for `access`; without one they act as the system itself, which sees every
    # workspace (workers, the CLI on the server's machine).

    def jobs(self, access: Access | None = None) -> JobService:
        return JobService(
            self.sessions,
            self.redis,
            self.events,
            self.lifecycle,
            self.settings,
            self.registry,
            access or Access.system(),
        )

    def knowledge(self, access: Access | None = None) -> KnowledgeService:
        return KnowledgeService(
            self.sessions,
            self.jobs(access),
            self.store,
            self.settings,
            access=access or Access.system(),
        )

    def answers(self, access: Access | None = None) -> AnswerService:
        return AnswerService(self.sessions, self.jobs(access), self.knowledge(access))

    def reports(self, access: Access | None = None) -> ReportService:
        return ReportService(
            self.sessions, self.jobs(access), self.knowledge(access), self.store, self.settings
        )

    def builder(self, access: Access | None = None) -> BuilderService:
        return BuilderService(
            self.sessions,
            self.redis,
            self.settings,
            access or Access.system(),
            jobs=self.jobs(access),
            embedder=lambda: llm.embedder_for(self.settings),
            tool_sources=self.builder_tool_sources,
        )

    def agents(self, access: Access | None = None) -> AgentService:
        return AgentService(
            self.sessions,
            self.jobs(access),
            self.knowledge(access),
            self.models(access),
            access or Access.system(),
            external_tools=self.external_tools,
            builder=self.builder_sessions,
        )

    def assistant(self, access: Access | None = None) -> AssistantService:
        return AssistantService(
            self.sessions, self.redis, self.jobs(access), self.knowledge(access), self.settings
        )

    def assistant_toolbox(self, workspace_id: str, owner: str | None) -> Toolbox | None:
        """The MCP tools an assistant run may use: those its owner's role allows in the
        conversation's workspace (none when the owner no longer has access there). The run
        asks a person before each "ask" tool; the job closes the toolbox when the run ends."""
        access = self._owner_access(workspace_id, owner)
        if access is None:
            return None
        return ApprovingToolbox(self.mcp_toolbox(access))

    def _owner_access(self, workspace_id: str, owner: str | None) -> Access | None:
        if owner is None:  # started by the system itself
            return Access("system", workspace_id, Role.owner)
        kind, _, ident = owner.partition(":")
        if kind == "user":
            try:
                return SignIn(self.sessions, self.redis, self.settings).user_access(
                    uuid.UUID(ident), workspace_id
                )
            except (ValueError, Unauthorized):
                return None
        # An API key's run: its role is bounded by its maker's, which only a presented key
        # shows, so its MCP tools are the read-only ones a viewer may use.
        return Access(owner, workspace_id, Role.viewer)

    def models(self, access: Access | None = None, *, lease: Lease | None = None) -> ModelService:
        return ModelService(
            self.sessions, self.redis, self.settings, access or Access.system(), lease=lease
        )

    def accounts(self, access: Access | None = None) -> Accounts:
        revocations = Revocations(self.redis, self.settings.access_token_minutes * 60)
        return Accounts(
            self.sessions,
            access or Access.system(),
            revocations,
            on_workspace_delete=(llm.forget_workspace,),
        )

    def mcp_toolbox(self, access: Access | None = None) -> McpToolbox:
        """The MCP tools `access` may use; the caller closes it (it holds live connections)."""
        return McpToolbox(
            self.sessions,
            self.redis,
            self.settings,
            access or Access.system(),
            SecretBox.for_settings(self.sessions, self.settings),
            self.events.statements,
        )

    def mcp_servers(self, access: Access | None = None) -> McpServers:
        return McpServers(
            self.sessions,
            self.redis,
            self.settings,
            access or Access.system(),
            SecretBox.for_settings(self.sessions, self.settings),
            lambda: self.mcp_toolbox(access),
        )

    def reaper(self) -> Reaper:
        return Reaper(self.sessions, self.redis, self.events, self.lifecycle, self.settings)

    def job_runtime(self) -> JobRuntime:
        """What this process's workers run jobs with; the job functions see this object as
        their `context.services`."""
        return JobRuntime(
            self.settings,
            self.sessions,
            self.redis,
            self.events,
            self.lifecycle,
            self.registry,
            services=self,
        )

    def dispose_after_fork(self) -> None:
        """In a forked child: forget the parent's connections without closing them."""
        self.engine.dispose(close=False)
        self.events.statements.engine.dispose(close=False)

    def close(self) -> None:
        self.store.close()
        self.redis.close()
        self.engine.dispose()
        self.events.statements.engine.dispose()


def run_worker_process(
    settings: Settings,
    database_url: str,
    redis_url: str,
    queues: Sequence[str] = QUEUE_NAMES,
    *,
    burst: bool = False,
    name: str | None = None,
    mode: WorkerMode = WorkerMode.inprocess,
    job_kinds: Sequence[JobKind] = (),
) -> bool:
    """Run one worker on its own connections until it stops; True if any job ran."""
    # The blocking dequeue must not hit a socket timeout, so this client blocks freely. Job
    # transitions are re-run by the reaper if lost, so they need not wait for the WAL flush.
    resources = Resources.connect(
        settings,
        database_url,
        redis_url,
        redis_timeout=None,
        pool_size=2,
        wait_for_flush=False,
        job_kinds=job_kinds,
    )
    # The models this worker keeps loaded are reported on a client of their own, which times
    # out. A forking worker keeps none: each work-horse loads its own and exits.
    presence = Presence(connect(redis_url), settings.loaded_model_ttl_seconds)
    try:
        migrate.check_current(resources.engine)
        check_redis(resources.redis)
        if mode is WorkerMode.inprocess:
            report_loads(presence)
        return run_worker(
            resources.job_runtime(),
            queues,
            burst=burst,
            name=name,
            mode=mode,
            # A forked work-horse must open its own database connections.
            after_fork=resources.dispose_after_fork,
        )
    finally:
        report_loads(None)
        presence.clear()
        presence.connection.close()
        resources.close()


def _provides(
    resources: Resources,
) -> tuple[AnswerDeps, KnowledgeDeps, ReportDeps, AgentDeps, AssistantDeps]:
    """What the domains' jobs need of `context.services`, which mypy checks this root gives."""
    return (resources, resources, resources, resources, resources)


class AgentMcpTools:
    """A workspace's MCP tools for agents and the agent builder. Agent tasks run unattended,
    so they get only the tools a member may use without being asked ("allow"); an "ask" or
    denied tool is neither listed nor callable (see citeline.mcp.policy)."""

    def __init__(self, toolbox: Callable[[Access], McpToolbox]) -> None:
        self.toolbox = toolbox

    def _allowed(self, workspace_id: str) -> tuple[McpToolbox, dict[str, Any]]:
        box = self.toolbox(Access("system", workspace_id, Role.member))
        try:
            return box, {t.name: t for t in box.tools() if t.policy == "allow"}
        except BaseException:
            box.close()
            raise

    def names(self, workspace_id: str) -> list[str]:
        box, tools = self._allowed(workspace_id)
        box.close()
        return sorted(tools)

    def infos(self, workspace_id: str) -> list[ToolInfo]:
        box, tools = self._allowed(workspace_id)
        box.close()
        return [
            ToolInfo(t.name, t.description, t.input_schema, source=f"mcp:{t.server_name}")
            for t in tools.values()
        ]

    def call(self, workspace_id: str, name: str, arguments: Mapping[str, Any]) -> ToolOutcome:
        box, tools = self._allowed(workspace_id)
        try:
            if name not in tools:
                reason = f"the tool {name!r} is not one an agent may call without asking"
                return ToolOutcome(ok=False, text=reason, error=reason)
            result = box.call(name, dict(arguments))
        finally:
            box.close()
        if result.is_error:
            return ToolOutcome(ok=False, text=result.text, error=result.text)
        return ToolOutcome(ok=True, text=result.text)
