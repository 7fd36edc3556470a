"""Agent builder sessions: a guided conversation that collects an agent's type, goals, tone,
tools and review step, and assembles its checked workflow, tools config and system prompt."""

from citeline.agent_builder.completed import CompletedSessions
from citeline.agent_builder.outputs import BUILT_IN_TOOLS, ToolInfo, ToolSource
from citeline.agent_builder.service import Answer, BuilderService

JOB_KINDS = ()

__all__ = [
    "BUILT_IN_TOOLS",
    "JOB_KINDS",
    "Answer",
    "BuilderService",
    "CompletedSessions",
    "ToolInfo",
    "ToolSource",
]
