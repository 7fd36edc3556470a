"""The interface every chat provider implements.

Providers are synchronous: they run inside worker jobs, where a blocking iterator keeps job
timeouts (SIGALRM) and cancellation simple. Closing the iterator early stops the generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from citeline.llm.messages import ChatEvent, ChatRequest

# Keeps the caller (a running job) alive for so many seconds around a call that may stop its
# heartbeat, such as llama.cpp loading a model while it holds the GIL. The job layer hands one
# over (`JobContext.lease`); outside a job there is none.
Lease = Callable[[float], AbstractContextManager[None]]


class Holdings(Protocol):
    """Where a process says which local models it keeps loaded, so the API can report them
    (a worker hands one over through the composition root; elsewhere there is none)."""

    def hold(self, name: str, cost_seconds: float | None = None) -> None:
        """`name` is loaded, which took `cost_seconds`."""
        ...

    def release(self, name: str) -> None: ...


class ChatProvider(Protocol):
    # Names the endpoint (provider kind plus model file or URL): errors, the circuit breaker
    # and the concurrency limit are keyed by it.
    endpoint: str

    def stream(
        self, model: str, request: ChatRequest, *, lease: Lease | None = None
    ) -> Iterator[ChatEvent]:
        """Generate a reply as text deltas and tool calls, ending with one `Finish`.
        Raises ProviderError, or InvalidInput for a request the model cannot take."""
        ...

    def close(self) -> None: ...
