"""The model service: providers, the registry of model versions, routing and resilience."""

from citeline.llm.chat_job import CHAT
from citeline.llm.registry import forget_workspace

JOB_KINDS = (CHAT,)

__all__ = ["JOB_KINDS", "forget_workspace"]
