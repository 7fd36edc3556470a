"""The model service: providers, the registry of model versions, routing and resilience; and
the embedders that turn text into vectors."""

from citeline.llm.batching import TokenBatches
from citeline.llm.chat_job import CHAT
from citeline.llm.embedders import embedder_for
from citeline.llm.embedding import Embedder, Vectors, count_tokens
from citeline.llm.messages import (
    ChatRequest,
    ChatResult,
    Finish,
    Message,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
    Usage,
)
from citeline.llm.messages import Role as MessageRole
from citeline.llm.predict import PREDICT
from citeline.llm.providers.base import Lease
from citeline.llm.registry import forget_workspace
from citeline.llm.service import ModelService, Reply

JOB_KINDS = (CHAT, PREDICT)

__all__ = [
    "JOB_KINDS",
    "ChatRequest",
    "ChatResult",
    "Embedder",
    "Finish",
    "Lease",
    "Message",
    "MessageRole",
    "ModelService",
    "Reply",
    "TextDelta",
    "TokenBatches",
    "ToolCall",
    "ToolCallEvent",
    "ToolSpec",
    "Usage",
    "Vectors",
    "count_tokens",
    "embedder_for",
    "forget_workspace",
]
