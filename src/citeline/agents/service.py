"""The agent registry and its tasks: what the API and the CLI call.

An agent is a name with numbered, immutable versions (`name@N`, like model versions): posting
a name again adds version N+1, and `name` alone means its newest version. Its status is derived
from its tasks and health, never stored: offline (disabled, or its model alias resolves to
nothing), busy (a task running), error (its last ended task failed), else idle."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.agents.job import TASK
from citeline.agents.models import (
    PRIORITY_QUEUES,
    Agent,
    AgentStatus,
    AgentStep,
    AgentTask,
    Priority,
    TaskStatus,
)
from citeline.agents.steps import ExternalTools
from citeline.agents.workflow import BUILTIN_TOOLS, validate_workflow
from citeline.auth import Access, Role, audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.jobs.models import Job, JobState
from citeline.jobs.service import JobService
from citeline.knowledge import KnowledgeService
from citeline.llm import ModelService

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RESERVED_NAMES = frozenset({"tasks", "workflow.schema.json"})
MAX_INPUT_CHARS = 20_000
MAX_PROMPT_CHARS = 20_000
MAX_CONCURRENCY = 32
DEFAULT_MODELS = ("assistant", "answer")  # the first that resolves on a fresh install


class BuilderSessions(Protocol):
    """Completed builder sessions (the agent builder provides them through the composition
    root): the agent a session produced, as a mapping with `system_prompt`, `workflow`, and
    optionally `tools`, `knowledge_bases`, `model` and `description`. Raises NotFound for a
    session the caller cannot see and Conflict for one not completed."""

    def completed_agent(self, access: Access, session_id: str) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class AgentSpec:
    name: str
    system_prompt: str
    model: str | None = None
    knowledge_bases: Sequence[str] = ()
    tools: Sequence[str] = ()
    workflow: Mapping[str, Any] | None = None
    concurrency: int = 1
    description: str = ""
    builder_session_id: str | None = None


@dataclass(frozen=True)
class AgentView:
    agent: Agent
    status: AgentStatus
    reason: str | None
    versions: int
    running: int
    queued: int
    waiting_review: int


@dataclass(frozen=True)
class TaskView:
    task: AgentTask
    agent: Agent
    status: TaskStatus
    job: Job | None
    steps: list[AgentStep]


def default_workflow() -> dict[str, Any]:
    """Search the agent's knowledge bases for the input, then answer it with citations."""
    return {
        "version": 1,
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "find", "type": "retrieve", "query": "{{input}}", "top_k": 6},
            {"id": "answer", "type": "llm", "prompt": "{{input}}", "cite": True},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "find"},
            {"from": "find", "to": "answer"},
            {"from": "answer", "to": "end"},
        ],
    }


def task_status(task: AgentTask, job: Job | None) -> TaskStatus:
    if job is None:
        return TaskStatus.queued
    state = JobState(job.state)
    if state in (JobState.queued, JobState.scheduled):
        return TaskStatus.queued
    if state in (JobState.started, JobState.waiting):
        return TaskStatus.running
    if state is JobState.suspended:
        return TaskStatus.waiting_review
    if state is JobState.stopped and task.rejected:
        return TaskStatus.rejected
    return TaskStatus(state.value)


class AgentService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: JobService,
        knowledge: KnowledgeService,
        models: ModelService,
        access: Access,
        *,
        external_tools: ExternalTools | None = None,
        builder: BuilderSessions | None = None,
    ) -> None:
        self.sessions = sessions
        self.jobs = jobs
        self.knowledge = knowledge
        self.models = models
        self.access = access
        self.external_tools = external_tools
        self.builder = builder

    @property
    def workspace_id(self) -> str:
        if self.access.workspace_id is None:
            raise InvalidInput("name a workspace to act in", field="workspace")
        return self.access.workspace_id

    # ---------- registry ----------

    def tools(self) -> list[str]:
        """The tools a workflow may name in this workspace."""
        names = set(BUILTIN_TOOLS)
        if self.external_tools is not None:
            names.update(self.external_tools.names(self.workspace_id))
        return sorted(names)

    def from_builder(self, name: str, session_id: str, overrides: Mapping[str, Any]) -> AgentView:
        if self.builder is None:
            raise InvalidInput(
                "builder sessions not available on this server; post the agent's spec instead",
                field="builder_session_id",
            )
        built = self.builder.completed_agent(self.access, session_id)
        workflow = built.get("workflow")
        spec = AgentSpec(
            name=name,
            system_prompt=str(built.get("system_prompt") or ""),
            model=overrides.get("model") or built.get("model"),
            knowledge_bases=overrides.get("knowledge_bases") or built.get("knowledge_bases") or (),
            tools=list(built.get("tools") or ()),
            workflow=workflow if isinstance(workflow, Mapping) else None,
            concurrency=int(overrides.get("concurrency") or 1),
            description=str(built.get("description") or ""),
            builder_session_id=session_id,
        )
        return self.create(spec)

    def create(self, spec: AgentSpec) -> AgentView:
        self.access.require(Role.member, "register agents")
        workspace_id = self.workspace_id
        name = spec.name.strip()
        if not NAME.match(name) or name in RESERVED_NAMES:
            raise InvalidInput(
                "an agent name is 1-64 lowercase letters, digits, '-' or '_', starting with a "
                "letter (and not 'tasks')",
                field="name",
            )
        if not spec.system_prompt.strip():
            raise InvalidInput("the system prompt is empty", field="system_prompt")
        if len(spec.system_prompt) > MAX_PROMPT_CHARS:
            raise InvalidInput(
                f"the system prompt is over {MAX_PROMPT_CHARS} characters", field="system_prompt"
            )
        if not 1 <= spec.concurrency <= MAX_CONCURRENCY:
            raise InvalidInput(
                f"concurrency must be between 1 and {MAX_CONCURRENCY}", field="concurrency"
            )
        available = self.tools()
        workflow = dict(spec.workflow) if spec.workflow is not None else default_workflow()
        flow = validate_workflow(workflow, tools=available)
        tools = sorted({*spec.tools, *flow.tools})
        unknown = [t for t in tools if t not in available]
        if unknown:
            raise InvalidInput(
                f"tool(s) {', '.join(unknown)} do not exist in this workspace "
                f"(available: {', '.join(available)})",
                field="tools",
            )
        model = spec.model or self._default_model()
        self._check_model(model)
        bases = self._knowledge_bases(spec.knowledge_bases)
        for node in flow.nodes.values():
            if node["type"] == "retrieve" and node.get("knowledge_bases"):
                node_bases = self._knowledge_bases(node["knowledge_bases"])
                node["knowledge_bases"] = node_bases
        for _ in range(3):  # two creators racing for the next version number
            try:
                with unit_of_work(self.sessions) as session:
                    latest = session.scalar(
                        select(func.max(Agent.version)).where(
                            Agent.workspace_id == workspace_id, Agent.name == name
                        )
                    )
                    agent = Agent(
                        id=uuid.uuid4(),
                        workspace_id=workspace_id,
                        name=name,
                        version=int(latest or 0) + 1,
                        description=spec.description[:2000],
                        system_prompt=spec.system_prompt,
                        model=model,
                        knowledge_base_ids=bases,
                        tools=tools,
                        workflow=workflow,
                        concurrency=spec.concurrency,
                        enabled=True,
                        builder_session_id=spec.builder_session_id,
                        created_by=self.access.subject,
                        created_at=utcnow(),
                    )
                    session.add(agent)
                    session.flush()
                    audit.add(
                        session,
                        audit.by(self.access, "agent.create", f"agent:{agent.id}",
                                 name=name, version=agent.version),
                    )  # fmt: skip
                    session.expunge(agent)
                return self._view(agent)
            except IntegrityError:
                continue
        raise Conflict(f"could not add a version of agent {name!r}; try again")

    def _default_model(self) -> str:
        for alias in DEFAULT_MODELS:
            try:
                self.models.registry.resolve(alias, workspace_id=self.workspace_id)
            except NotFound:
                continue
            return alias
        raise InvalidInput("no model alias to run agents with; name one", field="model")

    def _check_model(self, model: str) -> None:
        try:
            self.models.registry.resolve(model, workspace_id=self.workspace_id)
        except NotFound as exc:
            raise InvalidInput(f"model {model!r}: {exc.detail}", field="model") from exc

    def _knowledge_bases(self, refs: Sequence[str]) -> list[str]:
        if isinstance(refs, str):
            raise InvalidInput("knowledge_bases is a list", field="knowledge_bases")
        ids: list[str] = []
        for ref in refs:
            try:
                ids.append(str(self.knowledge.get(ref).id))
            except NotFound as exc:
                raise InvalidInput(exc.detail, field="knowledge_bases") from exc
        return list(dict.fromkeys(ids))

    def get(self, ref: str | uuid.UUID) -> Agent:
        """An agent by id, `name` (its newest version) or `name@N`."""
        with self.sessions() as session:
            agent = self._find(session, ref)
            session.expunge(agent)
            return agent

    def _find(self, session: Session, ref: str | uuid.UUID) -> Agent:
        agent: Agent | None = None
        if isinstance(ref, uuid.UUID) or _is_uuid(ref):
            agent = session.get(Agent, uuid.UUID(str(ref)))
        else:
            name, _, version = str(ref).partition("@")
            statement = select(Agent).where(Agent.name == name)
            if not self.access.is_system:
                statement = statement.where(Agent.workspace_id == self.access.workspace_id)
            if version:
                if not version.isdigit():
                    raise NotFound(f"agent {ref!r} not found")
                statement = statement.where(Agent.version == int(version))
            agent = session.scalars(statement.order_by(Agent.version.desc()).limit(1)).first()
        if agent is None or not self.access.sees(agent.workspace_id):
            raise NotFound(f"agent {ref!r} not found")
        return agent

    def view(self, ref: str | uuid.UUID) -> AgentView:
        return self._view(self.get(ref))

    def list(self, *, all_versions: bool = False) -> list[AgentView]:
        statement = select(Agent).order_by(Agent.name, Agent.version.desc())
        if not self.access.is_system:
            statement = statement.where(Agent.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            agents = list(session.scalars(statement))
            session.expunge_all()
        if not all_versions:
            newest: dict[tuple[str, str], Agent] = {}
            for agent in agents:
                newest.setdefault((agent.workspace_id, agent.name), agent)
            agents = list(newest.values())
        return [self._view(agent) for agent in agents]

    def set_enabled(self, ref: str, enabled: bool) -> AgentView:
        """Take one version (`name@N`, an id, or `name`: its newest) offline, or back: a
        disabled agent takes no new tasks; the ones it has go on."""
        self.access.require(Role.member, "enable or disable agents")
        with unit_of_work(self.sessions) as session:
            agent = self._find(session, ref)
            agent.enabled = enabled
            agent_id = agent.id
        return self.view(agent_id)

    def delete(self, ref: str) -> int:
        """Delete one version (`name@N`, an id) or every version (`name`) with their tasks;
        refused while one of their tasks has not ended."""
        self.access.require(Role.member, "delete agents")
        with unit_of_work(self.sessions) as session:
            agent = self._find(session, ref)
            by_name = not _is_uuid(str(ref)) and "@" not in str(ref)
            statement = select(Agent.id).where(Agent.workspace_id == agent.workspace_id)
            statement = (
                statement.where(Agent.name == agent.name)
                if by_name
                else statement.where(Agent.id == agent.id)
            )
            ids = list(session.scalars(statement))
            active = session.scalar(
                select(func.count())
                .select_from(AgentTask)
                .join(Job, Job.id == AgentTask.job_id)
                .where(
                    AgentTask.agent_id.in_(ids),
                    Job.state.in_([s.value for s in JobState if not s.terminal]),
                )
            )
            if active:
                raise Conflict(f"agent {ref!r} has {active} task(s) not ended; cancel them first")
            session.execute(delete(Agent).where(Agent.id.in_(ids)))
            audit.add(
                session,
                audit.by(self.access, "agent.delete", f"agent:{agent.id}",
                         name=agent.name, versions=len(ids)),
            )  # fmt: skip
        return len(ids)

    def _view(self, agent: Agent) -> AgentView:
        with self.sessions() as session:
            counts = dict(
                session.execute(
                    select(Job.state, func.count())
                    .select_from(AgentTask)
                    .join(Job, Job.id == AgentTask.job_id)
                    .where(AgentTask.agent_id == agent.id)
                    .where(Job.state.in_([s.value for s in JobState if not s.terminal]))
                    .group_by(Job.state)
                ).all()
            )
            last = session.execute(
                select(Job.state, Job.error)
                .select_from(AgentTask)
                .join(Job, Job.id == AgentTask.job_id)
                .where(
                    AgentTask.agent_id == agent.id,
                    Job.state.in_([s.value for s in JobState if s.terminal]),
                )
                .order_by(Job.finished_at.desc().nulls_last())
                .limit(1)
            ).first()
            versions = session.scalar(
                select(func.count()).where(
                    Agent.workspace_id == agent.workspace_id, Agent.name == agent.name
                )
            )
        running = int(counts.get("started", 0)) + int(counts.get("waiting", 0))
        queued = int(counts.get("queued", 0)) + int(counts.get("scheduled", 0))
        reviews = int(counts.get("suspended", 0))
        status, reason = AgentStatus.idle, None
        offline = self._offline(agent)
        if offline:
            status, reason = AgentStatus.offline, offline
        elif running:
            status = AgentStatus.busy
        elif last is not None and last.state == JobState.failed.value:
            status, reason = AgentStatus.error, last.error
        return AgentView(agent, status, reason, int(versions or 0), running, queued, reviews)

    def _offline(self, agent: Agent) -> str | None:
        if not agent.enabled:
            return "disabled"
        try:
            self.models.registry.resolve(agent.model, workspace_id=agent.workspace_id)
        except NotFound as exc:
            return f"model {agent.model!r} unavailable: {exc.detail}"
        missing = [t for t in agent.tools if t not in BUILTIN_TOOLS]
        if missing:
            known = (
                set(self.external_tools.names(agent.workspace_id)) if self.external_tools else set()
            )
            gone = [t for t in missing if t not in known]
            if gone:
                return f"tool(s) unavailable: {', '.join(gone)}"
        return None

    # ---------- tasks ----------

    def submit(self, ref: str | uuid.UUID, text: str, priority: str = "normal") -> TaskView:
        self.access.require(Role.member, "run agents")
        try:
            level = Priority(priority)
        except ValueError:
            raise InvalidInput(
                f"unknown priority {priority!r}; use high, normal or low", field="priority"
            ) from None
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("the input is empty", field="input")
        if len(text) > MAX_INPUT_CHARS:
            raise InvalidInput(
                f"the input is {len(text)} characters; the limit is {MAX_INPUT_CHARS}",
                field="input",
            )
        agent = self.get(ref)
        offline = self._offline(agent)
        if offline:
            raise Conflict(f"agent {agent.label} is offline: {offline}")
        return self._submit(agent, text, level, retry_of=None)

    def _submit(
        self, agent: Agent, text: str, level: Priority, retry_of: uuid.UUID | None
    ) -> TaskView:
        task_id = uuid.uuid4()
        with unit_of_work(self.sessions) as session:
            session.add(
                AgentTask(
                    id=task_id,
                    workspace_id=agent.workspace_id,
                    agent_id=agent.id,
                    input=text,
                    priority=level.value,
                    submitted_by=None if self.access.is_system else self.access.subject,
                    outputs={},
                    citations=[],
                    rejected=False,
                    retry_of=retry_of,
                )
            )
        job = self.jobs.enqueue(
            TASK.name,
            {"task_id": str(task_id), "agent": agent.label},
            workspace_id=agent.workspace_id,
            queue=PRIORITY_QUEUES[level],
        )
        with unit_of_work(self.sessions) as session:
            row = session.get(AgentTask, task_id)
            if row is not None and row.job_id is None:
                row.job_id = job.id
        return self.task(task_id)

    def task(self, task_id: uuid.UUID) -> TaskView:
        with self.sessions() as session:
            # One statement, one snapshot: read apart, a task could be seen before its output
            # was written and its job after it finished.
            row = session.execute(
                select(AgentTask, Job)
                .outerjoin(Job, Job.id == AgentTask.job_id)
                .where(AgentTask.id == task_id)
            ).first()
            if row is None or not self.access.sees(row[0].workspace_id):
                raise NotFound(f"agent task {task_id} not found")
            task, job = row[0], row[1]
            agent = session.get(Agent, task.agent_id)
            steps = list(
                session.scalars(
                    select(AgentStep).where(AgentStep.task_id == task_id).order_by(AgentStep.seq)
                )
            )
            session.expunge_all()
        assert agent is not None  # the foreign key cascades
        return TaskView(task, agent, task_status(task, job), job, steps)

    def tasks(self, agent_ref: str | None = None, *, limit: int = 50) -> builtins.list[TaskView]:
        statement = select(AgentTask.id).order_by(AgentTask.created_at.desc()).limit(limit)
        if not self.access.is_system:
            statement = statement.where(AgentTask.workspace_id == self.access.workspace_id)
        if agent_ref is not None:
            agent = self.get(agent_ref)
            statement = statement.where(AgentTask.agent_id == agent.id)
        with self.sessions() as session:
            ids = list(session.scalars(statement))
        return [self.task(task_id) for task_id in ids]

    def decide(self, task_id: uuid.UUID, *, approve: bool, note: str = "") -> TaskView:
        """A person's decision on the human_review step the task waits at: approval queues
        the task again past the review; rejection stops it."""
        self.access.require(Role.member, "review agent tasks")
        view = self.task(task_id)
        if view.status is not TaskStatus.waiting_review or view.job is None:
            raise Conflict(f"agent task {task_id} is {view.status.value}, not waiting for review")
        decision = {
            "decision": "approved" if approve else "rejected",
            "by": self.access.subject,
            "note": note[:2000],
            "at": utcnow().isoformat(),
        }
        with unit_of_work(self.sessions) as session:
            task = session.get(AgentTask, task_id, with_for_update=True)
            assert task is not None
            step = session.scalars(
                select(AgentStep)
                .where(AgentStep.task_id == task_id, AgentStep.status == "waiting")
                .order_by(AgentStep.seq.desc())
            ).first()
            if step is None or step.node != task.cursor:
                raise Conflict(f"agent task {task_id} has no review waiting")
            flow = validate_workflow(view.agent.workflow, tools=view.agent.tools)
            step.status = decision["decision"]
            step.outputs = decision
            step.finished_at = utcnow()
            task.review = {**decision, "node": step.node}
            if approve:
                task.outputs = {**(task.outputs or {}), step.node: {"text": note, **decision}}
                task.cursor = flow.next_node(step.node)
            else:
                task.rejected = True
        if approve:
            if self.jobs.lifecycle.resume(view.job.id, {"review": decision}) is None:
                raise Conflict(f"agent task {task_id} stopped waiting before the approval")
        else:
            self.jobs.cancel(view.job.id, f"rejected by {self.access.subject}")
        return self.task(task_id)

    def cancel(self, task_id: uuid.UUID) -> TaskView:
        view = self.task(task_id)
        if view.job is None:
            raise Conflict(f"agent task {task_id} has no job to cancel yet")
        self.jobs.cancel(view.job.id)
        return self.task(task_id)

    def retry(self, task_id: uuid.UUID) -> TaskView:
        """A new task with the same agent, input and priority as one that ended badly."""
        self.access.require(Role.member, "run agents")
        view = self.task(task_id)
        if view.status not in (TaskStatus.failed, TaskStatus.stopped, TaskStatus.rejected):
            raise Conflict(
                f"agent task {task_id} is {view.status.value}; only failed, stopped or "
                "rejected tasks are retried"
            )
        offline = self._offline(view.agent)
        if offline:
            raise Conflict(f"agent {view.agent.label} is offline: {offline}")
        return self._submit(view.agent, view.task.input, Priority(view.task.priority), task_id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
