"""Sending streamed text in small batches: every event a listener receives is also a database
row, so tokens go out at most every `seconds`, not one event per token."""

from __future__ import annotations

import time
from collections.abc import Callable

FLUSH_SECONDS = 0.05


class TokenBatches:
    def __init__(self, send: Callable[[str], object], seconds: float = FLUSH_SECONDS) -> None:
        self.send = send
        self.seconds = seconds
        self._pending: list[str] = []
        self._flushed = time.monotonic()

    def add(self, text: str) -> None:
        self._pending.append(text)
        if time.monotonic() - self._flushed >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.send("".join(self._pending))
            self._pending.clear()
        self._flushed = time.monotonic()
