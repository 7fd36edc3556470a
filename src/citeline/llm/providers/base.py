"""The interface every chat provider implements.

Providers are synchronous: they run inside worker jobs, where a blocking iterator keeps job
timeouts (SIGALRM) and cancellation simple. Closing the iterator early stops the generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from citeline.llm.messages import ChatEvent, ChatRequest


class ChatProvider(Protocol):
    # Names the endpoint (provider kind plus model file or URL): errors, the circuit breaker
    # and the concurrency limit are keyed by it.
    endpoint: str

    def stream(self, model: str, request: ChatRequest) -> Iterator[ChatEvent]:
        """Generate a reply as text deltas and tool calls, ending with one `Finish`.
        Raises ProviderError, or InvalidInput for a request the model cannot take."""
        ...

    def close(self) -> None: ...
