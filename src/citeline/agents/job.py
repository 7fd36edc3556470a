"""The agent task's job: it takes one of the agent's concurrency slots (or waits its turn),
then walks the workflow from where the task stands, recording each step; at a human_review
node it records the pause and suspends, and a person's approval queues it again.

Each attempt continues from the task's `cursor`, so a worker killed mid-step costs only that
step: the retry runs it again and goes on."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from citeline.agents.models import Agent, AgentStep, AgentTask
from citeline.agents.steps import ExternalTools, Run, StepResult, run_node
from citeline.agents.workflow import Workflow, validate_workflow
from citeline.auth import Access, Role
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import NotFound
from citeline.jobs.context import JobContext
from citeline.jobs.models import Job, JobState
from citeline.jobs.registry import JobKind
from citeline.knowledge import KnowledgeService
from citeline.llm import Lease, ModelService
from citeline.settings import Settings

log = logging.getLogger(__name__)

DEFER_SECONDS = 0.5  # how soon a task at its agent's limit looks for a free slot again


class AgentDeps(Protocol):
    """What agent tasks need of the process they run in."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def external_tools(self) -> ExternalTools | None: ...

    def knowledge(self, access: Access | None = None) -> KnowledgeService: ...

    def models(
        self, access: Access | None = None, *, lease: Lease | None = None
    ) -> ModelService: ...


def run_task(context: JobContext[AgentDeps]) -> dict[str, Any] | None:
    deps = context.services
    task_id = uuid.UUID(str(context.args["task_id"]))
    if not _claim_slot(deps.sessions, task_id, context.job_id, context.attempt):
        context.defer(DEFER_SECONDS, "the agent runs as many tasks as its concurrency allows")
        return None
    with deps.sessions() as session:
        task = session.get(AgentTask, task_id)
        agent = session.get(Agent, task.agent_id) if task is not None else None
        if task is None or agent is None:
            raise NotFound(f"agent task {task_id} no longer exists")
        session.expunge_all()
    flow = validate_workflow(agent.workflow, tools=_tools_of(agent.workflow))
    acting = Access("system", agent.workspace_id, Role.owner)
    run = Run(
        workspace_id=agent.workspace_id,
        subject=task.submitted_by,
        job_id=context.job_id,
        model=agent.model,
        system_prompt=agent.system_prompt,
        knowledge_bases=[uuid.UUID(kb) for kb in agent.knowledge_base_ids],
        knowledge=deps.knowledge(acting),
        models=deps.models(lease=context.lease),
        external=deps.external_tools,
        support_threshold=deps.settings.answer_support_threshold,
        context_tokens=deps.settings.answer_context_tokens,
        checkpoint=context.check_cancelled,
    )
    cursor = task.cursor or flow.start
    outputs: dict[str, Any] = dict(task.outputs or {})
    while True:
        context.check_cancelled()
        node = flow.nodes[cursor]
        if node["type"] == "end":
            return _finish(context, deps.sessions, task_id, flow, outputs, cursor)
        if node["type"] == "start":  # nothing to run or record: the input is the task's
            cursor = flow.next_node(cursor) or cursor
            continue
        if node["type"] == "human_review":
            _pause(context, deps.sessions, task_id, node, outputs)
            return None
        context.emit("step.started", {"node": cursor, "type": node["type"]})
        started = utcnow()
        result = run_node(node, outputs, task.input, run)
        outputs[cursor] = result.outputs
        following = flow.next_node(cursor, result.outcome)
        if following is None:  # validated workflows always go on until an end node
            raise NotFound(f"node {cursor!r} has no next node")
        seq = _record(deps.sessions, task_id, context.attempt, node, result, started, following)
        context.emit(
            "step",
            {
                "seq": seq,
                "node": cursor,
                "type": node["type"],
                "status": "done",
                "text": str(result.outputs.get("text") or "")[:2000],
                "model_calls": result.model_calls,
                "tool_calls": result.tool_calls,
                "citations": len(result.citations),
                "next": following,
            },
        )
        cursor = following


def _tools_of(workflow: dict[str, Any]) -> list[str]:
    return [n["tool"] for n in workflow.get("nodes", []) if n.get("type") == "tool"]


def _claim_slot(
    sessions: sessionmaker[Session], task_id: uuid.UUID, job_id: uuid.UUID, attempt: int
) -> bool:
    """Take one of the agent's concurrency slots for this attempt, or say it must wait. A slot
    is held by an attempt that claimed it while its job still runs it: a dead worker's slot
    frees itself when the reaper moves its job on."""
    with unit_of_work(sessions) as session:
        task = session.get(AgentTask, task_id)
        if task is None:
            raise NotFound(f"agent task {task_id} no longer exists")
        agent = session.get(Agent, task.agent_id, with_for_update=True)  # serialises claims
        if agent is None:
            raise NotFound(f"the agent of task {task_id} no longer exists")
        held = session.scalar(
            select(func.count())
            .select_from(AgentTask)
            .join(
                Job,
                and_(
                    Job.id == AgentTask.job_id,
                    Job.attempt == AgentTask.slot_attempt,
                    Job.state == JobState.started.value,
                ),
            )
            .where(AgentTask.agent_id == agent.id, AgentTask.id != task_id)
        )
        if (held or 0) >= agent.concurrency:
            return False
        task.slot_attempt = attempt
        task.job_id = task.job_id or job_id  # the submitter may not have written it yet
        return True


def _record(
    sessions: sessionmaker[Session],
    task_id: uuid.UUID,
    attempt: int,
    node: dict[str, Any],
    result: StepResult,
    started: Any,
    following: str,
    status: str = "done",
) -> int:
    """Store the step and move the task's cursor past it, in one transaction."""
    with unit_of_work(sessions) as session:
        task = session.get(AgentTask, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"agent task {task_id} no longer exists")
        seq = _next_seq(session, task_id)
        session.add(
            AgentStep(
                id=uuid.uuid4(),
                task_id=task_id,
                seq=seq,
                node=node["id"],
                type=node["type"],
                status=status,
                attempt=attempt,
                inputs=result.inputs,
                outputs=result.outputs,
                model_calls=result.model_calls,
                tool_calls=result.tool_calls,
                citations=result.citations,
                started_at=started,
                finished_at=utcnow(),
            )
        )
        task.outputs = {**(task.outputs or {}), node["id"]: result.outputs}
        task.cursor = following
    return seq


def _next_seq(session: Session, task_id: uuid.UUID) -> int:
    last = session.scalar(select(func.max(AgentStep.seq)).where(AgentStep.task_id == task_id))
    return int(last or 0) + 1


def _pause(
    context: JobContext[AgentDeps],
    sessions: sessionmaker[Session],
    task_id: uuid.UUID,
    node: dict[str, Any],
    outputs: dict[str, Any],
) -> None:
    """Record the review the task waits for, then suspend its job."""
    with unit_of_work(sessions) as session:
        task = session.get(AgentTask, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"agent task {task_id} no longer exists")
        waiting = session.scalar(
            select(AgentStep).where(
                AgentStep.task_id == task_id,
                AgentStep.node == node["id"],
                AgentStep.status == "waiting",
            )
        )
        if waiting is None:
            session.add(
                AgentStep(
                    id=uuid.uuid4(),
                    task_id=task_id,
                    seq=_next_seq(session, task_id),
                    node=node["id"],
                    type=node["type"],
                    status="waiting",
                    attempt=context.attempt,
                    inputs={
                        "instructions": node.get("instructions") or "",
                        "draft": _latest_text(outputs),
                    },
                    outputs={},
                    model_calls=[],
                    tool_calls=[],
                    citations=[],
                    started_at=utcnow(),
                )
            )
    context.suspend(
        {
            "node": node["id"],
            "instructions": node.get("instructions") or "",
            "draft": _latest_text(outputs)[:2000],
        }
    )


def _latest_text(outputs: dict[str, Any]) -> str:
    for out in reversed(list(outputs.values())):
        if out.get("text"):
            return str(out["text"])
    return ""


def _finish(
    context: JobContext[AgentDeps],
    sessions: sessionmaker[Session],
    task_id: uuid.UUID,
    flow: Workflow,
    outputs: dict[str, Any],
    end: str,
) -> dict[str, Any]:
    """The task's output is that of the last llm node it ran (with its citations), or failing
    one, the last output of any node."""
    chosen: dict[str, Any] = {}
    for node_id in reversed(list(outputs)):
        if flow.nodes.get(node_id, {}).get("type") == "llm":
            chosen = outputs[node_id]
            break
    else:
        for node_id in reversed(list(outputs)):
            if outputs[node_id].get("text"):
                chosen = outputs[node_id]
                break
    text = str(chosen.get("text") or "")
    citations = list(chosen.get("citations") or [])
    with unit_of_work(sessions) as session:
        task = session.get(AgentTask, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"agent task {task_id} no longer exists")
        task.output = text
        task.citations = citations
        task.cursor = end
    context.emit("task.output", {"text": text[:4000], "citations": len(citations)})
    return {"task_id": str(task_id), "output": text, "citations": len(citations)}


TASK = JobKind("agent.task", run_task, timeout_seconds=1800, max_attempts=2)
