"""Agents: a registry of versioned agents and their workflows, run as prioritised tasks."""

from citeline.agents.workflow import (
    BUILTIN_TOOLS,
    WORKFLOW_SCHEMA,
    Workflow,
    to_mermaid,
    validate_workflow,
)

__all__ = ["BUILTIN_TOOLS", "WORKFLOW_SCHEMA", "Workflow", "to_mermaid", "validate_workflow"]
