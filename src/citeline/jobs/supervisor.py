"""Runs N `citeline worker` processes beside `serve` and restarts any that dies."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX = 30.0


class WorkerPool:
    def __init__(self, count: int, env: Mapping[str, str], queues: Sequence[str]) -> None:
        self.count = count
        self.env = dict(env)
        self.queues = list(queues)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.restarts = 0
        self._failures = [0] * count
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="citeline-workers", daemon=True)

    def start(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        self._monitor.start()

    def alive(self) -> int:
        with self._lock:
            return sum(1 for p in self.processes if p is not None and p.poll() is None)

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown: each worker finishes its current job; after `timeout`, kill the rest
        (their jobs are retried by the reaper, so nothing is lost)."""
        self._stopping.set()
        with self._lock:
            running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time; killing it", extra={"pid": process.pid})
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)

    def _spawn(self, slot: int) -> None:
        command = [sys.executable, "-m", "citeline", "worker", "--queues", ",".join(self.queues)]
        # Own session: a terminal's Ctrl-C reaches `serve`, which then stops workers in order.
        process = subprocess.Popen(command, env=self.env, start_new_session=True)
        with self._lock:
            self.processes[slot] = process
        log.info("worker started", extra={"pid": process.pid, "slot": slot})

    def _watch(self) -> None:
        next_start = [0.0] * self.count
        while not self._stopping.wait(0.5):
            for slot in range(self.count):
                with self._lock:
                    process = self.processes[slot]
                if process is None or process.poll() is None:
                    continue
                now = time.monotonic()
                if next_start[slot] == 0.0:
                    self._failures[slot] += 1
                    delay = min(RESTART_BACKOFF_MAX, 0.5 * 2 ** (self._failures[slot] - 1))
                    next_start[slot] = now + delay
                    log.warning(
                        "worker exited; restarting",
                        extra={"pid": process.pid, "code": process.returncode, "delay": delay},
                    )
                if now >= next_start[slot] and not self._stopping.is_set():
                    next_start[slot] = 0.0
                    self.restarts += 1
                    self._spawn(slot)
