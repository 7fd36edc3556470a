"""Every ORM model, imported in one place so Alembic and `create_all` see the whole schema."""

from citeline.answers.models import Conversation, Turn
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
from citeline.jobs.models import Job, JobEvent
from citeline.knowledge.models import Chunk, ChunkTerm, Document, KnowledgeBase, TermStat
from citeline.llm.models import Generation, ModelAlias, ModelVersion, TokenUsage

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Chunk",
    "ChunkTerm",
    "Conversation",
    "Document",
    "Generation",
    "Invitation",
    "Job",
    "JobEvent",
    "KnowledgeBase",
    "Membership",
    "ModelAlias",
    "ModelVersion",
    "RefreshToken",
    "ServerSecret",
    "TermStat",
    "TokenUsage",
    "Turn",
    "User",
    "Workspace",
]
