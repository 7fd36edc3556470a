"""The assistant: conversations whose runs stream typed events, call tools (built-in and
through a `Toolbox`) and cite documents and tool results."""

from citeline.assistant.job import RUN
from citeline.assistant.loop import AssistantDeps
from citeline.assistant.service import AssistantService
from citeline.assistant.tools import ExternalTool, Toolbox, ToolResult

JOB_KINDS = (RUN,)

__all__ = [
    "JOB_KINDS",
    "AssistantDeps",
    "AssistantService",
    "ExternalTool",
    "ToolResult",
    "Toolbox",
]
