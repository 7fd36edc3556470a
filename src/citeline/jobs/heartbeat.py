"""The liveness key of a running job: kept fresh by a thread while the job runs, it lapses
soon after the process dies, which is how the reaper tells a dead worker from a slow one."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

from citeline.jobs.queue import alive_key

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        connection: redis.Redis,
        job_id: uuid.UUID,
        attempt: int,
        interval: float,
        ttl: float,
        *,
        beat_now: bool = True,
    ) -> None:
        self.connection = connection
        self.key = alive_key(job_id)
        self.attempt = attempt
        self.interval = interval
        self.ttl_ms = int(ttl * 1000)
        self._hold_until = 0.0
        self._beat_now = beat_now  # False: the caller has set the key already
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citeline-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self._beat_now:
            self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # The key is left to expire: the reaper only reads it for jobs still `started`.
        self._stopped.set()
        self._thread.join(timeout=self.interval + 1)

    def hold(self, seconds: float) -> None:
        """Keep the job alive for `seconds` whether or not this thread gets to beat (a call
        that keeps the GIL for long, such as llama.cpp loading a model, stops it beating)."""
        self._hold_until = time.monotonic() + seconds
        self._beat()

    def release(self) -> None:
        self._hold_until = 0.0
        self._beat()

    def _beat(self) -> None:
        held = int((self._hold_until - time.monotonic()) * 1000)
        try:
            self.connection.set(self.key, self.attempt, px=max(self.ttl_ms, held))
        except redis.RedisError as exc:
            log.warning("heartbeat missed", extra={"error": str(exc)})

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self._beat()
