"""Every ORM model, imported in one place: the whole schema, which the migrations must match
(tests compare them; `scripts/new_migration.py` drafts a revision from the difference).
Like the composition root, it knows every domain, and nothing below it imports it."""

from citeline.agent_builder.models import BuilderSession
from citeline.agents.models import Agent, AgentStep, AgentTask
from citeline.answers.models import Conversation, Turn
from citeline.assistant.models import (
    AssistantConversation,
    AssistantMessage,
    AssistantRun,
    AssistantToolCall,
)
from citeline.auth.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    RefreshToken,
    ServerSecret,
    User,
    Workspace,
)
from citeline.db.base import Base
from citeline.jobs.models import Job, JobEvent, JobGroup
from citeline.knowledge.models import Chunk, ChunkTerm, Document, KnowledgeBase, TermStat
from citeline.llm.models import Generation, ModelAlias, ModelVersion, TokenUsage
from citeline.mcp.models import McpServer, McpToolPolicy, McpUserCredentials
from citeline.reports.models import Report, ReportExport, ReportSection

__all__ = [
    "Agent",
    "AgentStep",
    "AgentTask",
    "ApiKey",
    "AssistantConversation",
    "AssistantMessage",
    "AssistantRun",
    "AssistantToolCall",
    "AuditEvent",
    "Base",
    "BuilderSession",
    "Chunk",
    "ChunkTerm",
    "Conversation",
    "Document",
    "Generation",
    "Invitation",
    "Job",
    "JobEvent",
    "JobGroup",
    "KnowledgeBase",
    "McpServer",
    "McpToolPolicy",
    "McpUserCredentials",
    "Membership",
    "ModelAlias",
    "ModelVersion",
    "RefreshToken",
    "Report",
    "ReportExport",
    "ReportSection",
    "ServerSecret",
    "TermStat",
    "TokenUsage",
    "Turn",
    "User",
    "Workspace",
]
