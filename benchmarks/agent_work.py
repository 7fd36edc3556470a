"""The job the agent-task benchmark measures tasks against: the agent's tool step, run by the
same code, without the agent layer (a module of its own, so workers import it by name)."""

from __future__ import annotations

from typing import Any

from citeline.agents.steps import Run, run_node
from citeline.jobs.context import JobContext
from citeline.jobs.registry import JobKind

TOOL_NODE = {
    "id": "look",
    "type": "tool",
    "tool": "search_knowledge_base",
    "arguments": {"query": "{{input}}"},
}
WORKFLOW = {
    "version": 1,
    "nodes": [{"id": "start", "type": "start"}, TOOL_NODE, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "look"}, {"from": "look", "to": "end"}],
}


def same_work(context: JobContext[Any]) -> dict[str, Any]:
    """The agent task's step, without the agent layer: the same tool call, one event."""
    deps = context.services
    run = Run(
        workspace_id="default", subject=None, job_id=context.job_id, model="assistant",
        system_prompt="", knowledge_bases=[], knowledge=deps.knowledge(), models=deps.models(),
        external=None, support_threshold=0.5, context_tokens=700,
        checkpoint=context.check_cancelled,
    )  # fmt: skip
    result = run_node(TOOL_NODE, {}, str(context.args["input"]), run)
    context.emit("step", {"node": "look", "tool_calls": result.tool_calls})
    return {"output": result.outputs.get("text", "")}


SAME_WORK = JobKind("bench.agent_same_work", same_work)
