"""The interface every chat provider implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from citeline.llm.messages import ChatEvent, ChatRequest


class ChatProvider(Protocol):
    # Names the endpoint (provider kind plus model or URL): errors, the circuit breaker and
    # the concurrency limit are keyed by it.
    endpoint: str

    def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Generate a reply as text deltas and tool calls, ending with one `Finish`.
        Raises ProviderError (or InvalidInput for a request the model cannot take)."""
        ...

    async def aclose(self) -> None: ...
