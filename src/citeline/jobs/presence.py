"""What a live process holds, in Redis: a name a process holds (a model it has loaded, say)
counts while the process lives and lapses within `ttl` seconds after it dies.

Each name is a sorted set of holders scored by the expiry of their last refresh, which a
daemon thread renews; a clean exit removes the process's entries at once. Expiries come from
each host's clock, so hosts whose clocks differ by a good part of `ttl` miscount."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid

import redis

log = logging.getLogger(__name__)


def presence_key(name: str) -> str:
    return f"citeline:held:{name}"


def cost_key(name: str) -> str:
    return f"citeline:held:{name}:seconds"


def holders(connection: redis.Redis, name: str) -> int:
    """How many live processes hold `name`."""
    return int(connection.zcount(presence_key(name), time.time() * 1000, "+inf"))


def last_cost(connection: redis.Redis, name: str) -> float | None:
    """How many seconds the last process took to come to hold `name` (None: unknown)."""
    value = connection.get(cost_key(name))
    return None if value is None else float(value)


class Presence:
    """The names this process holds, kept fresh in Redis every `ttl / 3` seconds."""

    def __init__(self, connection: redis.Redis, ttl: float) -> None:
        self.connection = connection
        self.ttl_ms = int(ttl * 1000)
        self.interval = ttl / 3
        self._names: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._holder = ""
        atexit.register(self.clear)

    def hold(self, name: str, cost_seconds: float | None = None) -> None:
        """Hold `name`; `cost_seconds` (what getting it took, such as a load) is kept for
        `last_cost` after the process ends."""
        if cost_seconds is not None:
            try:
                self.connection.set(cost_key(name), f"{cost_seconds:.3f}")
            except redis.RedisError as exc:
                log.warning("presence cost not recorded", extra={"error": str(exc)})
        with self._lock:
            self._names.add(name)
            if self._pid != os.getpid():  # first hold here, or a forked child of the holder
                self._pid = os.getpid()
                self._holder = f"{socket.gethostname()}:{self._pid}:{uuid.uuid4().hex[:8]}"
                self._thread = threading.Thread(
                    target=self._run, name="citeline-presence", daemon=True
                )
                self._thread.start()
        self._refresh()

    def release(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)
        self._remove([name])

    def clear(self) -> None:
        with self._lock:
            names, self._names = list(self._names), set()
        self._remove(names)

    def _refresh(self) -> None:
        with self._lock:
            names = list(self._names)
        if not names:
            return
        expiry = time.time() * 1000 + self.ttl_ms
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for name in names:
                    key = presence_key(name)
                    pipe.zremrangebyscore(key, "-inf", time.time() * 1000)
                    pipe.zadd(key, {self._holder: expiry})
                    pipe.pexpire(key, self.ttl_ms)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("presence not refreshed", extra={"error": str(exc)})

    def _remove(self, names: list[str]) -> None:
        if not names or not self._holder or self._pid != os.getpid():
            return
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.zrem(presence_key(name), self._holder)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("presence not removed", extra={"error": str(exc)})

    def _run(self) -> None:
        pid = os.getpid()
        while os.getpid() == pid:
            time.sleep(self.interval)
            self._refresh()
