"""Agents: a registry of versioned agents and their workflows, run as prioritised tasks."""

from citeline.agents.job import TASK, AgentDeps
from citeline.agents.service import AgentService, AgentSpec, BuilderSessions
from citeline.agents.steps import ExternalTools, ToolOutcome
from citeline.agents.workflow import (
    BUILTIN_TOOLS,
    WORKFLOW_SCHEMA,
    Workflow,
    to_mermaid,
    validate_workflow,
)

JOB_KINDS = (TASK,)

__all__ = [
    "BUILTIN_TOOLS",
    "JOB_KINDS",
    "WORKFLOW_SCHEMA",
    "AgentDeps",
    "AgentService",
    "AgentSpec",
    "BuilderSessions",
    "ExternalTools",
    "ToolOutcome",
    "Workflow",
    "to_mermaid",
    "validate_workflow",
]
