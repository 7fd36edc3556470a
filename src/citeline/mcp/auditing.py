"""The audit rows of MCP tool calls, written off the call path in batches.

A tool call only appends its `audit.Entry` to a list (its time and request id taken then); one
writer thread gathers what came in over `delay` seconds (or `max_batch` entries) and writes it
with one multi-row INSERT. `flush()` writes everything added so far and waits for it; `close()`
flushes and ends the thread. A row can be late by `delay` at most, and a process killed outright
(SIGKILL) in that window loses its last rows, as it loses the call in flight; a clean exit
(including the interpreter's own, which joins the thread) writes them.

One thread per writer, started with the first entry and ended when it has nothing left to do,
so an idle toolbox holds none. A failed write is logged with the number of rows lost and
counted (`failed`); it never reaches the call that was recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from citeline.auth import audit
from citeline.db.engine import Statements

log = logging.getLogger(__name__)

DELAY_SECONDS = 0.25
MAX_BATCH = 200
DRAIN_SECONDS = 30.0


class AuditWriter:
    def __init__(
        self,
        statements: Statements,
        *,
        delay: float = DELAY_SECONDS,
        max_batch: int = MAX_BATCH,
        write: Callable[[Statements, Sequence[audit.Entry]], None] = audit.append,
    ) -> None:
        self.statements = statements
        self.delay = delay
        self.max_batch = max_batch
        self._write = write
        self._condition = threading.Condition()
        self._queue: list[audit.Entry] = []
        self._added = 0  # entries ever added
        self._done = 0  # entries written or given up on
        self.failed = 0  # entries whose write failed
        self._urgent = 0  # flushes waiting: write at once
        self._running = False
        self._executor: ThreadPoolExecutor | None = None

    def add(self, entry: audit.Entry) -> None:
        with self._condition:
            self._queue.append(entry)
            self._added += 1
            if len(self._queue) >= self.max_batch or self._urgent:
                self._condition.notify_all()
            if not self._running:
                self._running = True
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="mcp-audit")
                self._executor.submit(self._drain)

    def flush(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Write every entry added so far; False (and logged) when that took over `timeout`."""
        with self._condition:
            target = self._added
            if self._done >= target:
                return True
            self._urgent += 1
            self._condition.notify_all()
            try:
                written = self._condition.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._urgent -= 1
        if not written:
            log.error("mcp tool calls not audited in time", extra={"count": target - self._done})
        return written

    def close(self) -> None:
        self.flush()
        with self._condition:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _drain(self) -> None:
        while True:
            with self._condition:
                deadline = time.monotonic() + self.delay
                while self._queue and not self._urgent and len(self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if not batch:
                    self._running = False
                    return
            try:
                self._write(self.statements, batch)
            except Exception as exc:  # noqa: BLE001 - logged and counted; the calls stand
                self.failed += len(batch)
                log.error(
                    "mcp tool calls not audited", extra={"count": len(batch), "error": repr(exc)}
                )
            with self._condition:
                self._done += len(batch)
                self._condition.notify_all()
