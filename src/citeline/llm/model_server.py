"""One llama.cpp server for every worker on the machine.

`serve` starts it (`ModelServer`) beside its worker pool and hands the workers its address and
key through their environment; a worker's local provider then sends the default model's requests
there instead of loading the weights itself. The machine holds one copy of the model whatever
the number of workers, and llama.cpp batches the concurrent requests in its parallel slots
(continuous batching) on every core. Models other than the default one stay in-process.

The child runs `citeline model-server`: the same llama.cpp server object the
in-process provider uses, listening on a loopback port, locked with a random key.
See docs/adr/0003-shared-model-server.md.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from citeline.errors import ConfigurationError
from citeline.llm.llama import import_llama

log = logging.getLogger(__name__)

NICENESS = 10

KEY_VARIABLE = "CITELINE_LLM_SERVER_KEY"
RESTART_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class SharedModel:
    """Where the shared server listens; workers read it from their settings."""

    url: str  # http://127.0.0.1:PORT
    key: str


@dataclass(frozen=True)
class ServerSpec:
    path: Path
    slots: int
    context_tokens: int  # per slot
    threads: int
    cache_ram_mib: int


def answers(url: str) -> bool:
    """Whether the server at `url` answers its health check."""
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False  # not listening (yet)


def wait_until_up(shared: SharedModel, seconds: float) -> bool:
    """Whether the server answers within `seconds` (it may be loading the model, or
    restarting after a crash)."""
    deadline = time.monotonic() + seconds
    while not answers(shared.url):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ModelServer:
    """The supervised child process: started, awaited until it answers, restarted with
    backoff if it dies, stopped with SIGTERM (then SIGKILL)."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        ready_timeout: float = 300.0,
        on_ready: Callable[[float], None] | None = None,
    ) -> None:
        self.spec = spec
        self.ready_timeout = ready_timeout
        self.on_ready = on_ready  # called once with the seconds the first load took
        self.shared = SharedModel(url=f"http://127.0.0.1:{free_port()}", key=secrets.token_hex(24))
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="citeline-model", daemon=True)

    def start(self) -> SharedModel:
        """Start the child and return at once: requests that come before the model is loaded
        wait for it (`wait_until_up`), as they would wait for an in-process load."""
        self._started = time.monotonic()
        self._spawn()
        self._monitor.start()
        return self.shared

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            process = self.process
            if process is not None and process.poll() is not None:
                raise ConfigurationError(
                    f"the model server exited with code {process.returncode} while loading "
                    f"{self.spec.path.name}; its log above says why"
                )
            if self.healthy():
                return
            time.sleep(0.2)
        raise ConfigurationError(
            f"the model server did not answer within {self.ready_timeout:g} s "
            f"(loading {self.spec.path.name})"
        )

    def healthy(self) -> bool:
        return answers(self.shared.url)

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("model server did not stop in time; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)

    def _spawn(self) -> None:
        spec = self.spec
        port = self.shared.url.rsplit(":", 1)[1]
        command = [
            sys.executable,
            "-m",
            "citeline",
            "model-server",
            "--model",
            str(spec.path),
            "--port",
            port,
            "--slots",
            str(spec.slots),
            "--context-tokens",
            str(spec.context_tokens),
            "--threads",
            str(spec.threads),
            "--cache-ram-mib",
            str(spec.cache_ram_mib),
        ]
        env = dict(os.environ)
        env[KEY_VARIABLE] = self.shared.key  # never on the command line, where `ps` shows it
        process = subprocess.Popen(command, env=env, start_new_session=True)
        with self._lock:
            self.process = process
        log.info(
            "model server started",
            extra={"pid": process.pid, "url": self.shared.url, "slots": spec.slots},
        )

    def _watch(self) -> None:
        failures = 0
        announced = False
        while not self._stopping.wait(0.5):
            with self._lock:
                process = self.process
            if process is None or process.poll() is None:
                if not announced and self.healthy():
                    announced = True
                    log.info("model server ready", extra={"url": self.shared.url})
                    if self.on_ready is not None:
                        self.on_ready(time.monotonic() - self._started)
                continue
            failures += 1
            delay = min(RESTART_BACKOFF_MAX, 0.5 * 2 ** (failures - 1))
            log.warning(
                "model server exited; restarting it",
                extra={"code": process.returncode, "in_seconds": delay},
            )
            if self._stopping.wait(delay):
                return
            self._spawn()
            self.restarts += 1
            try:
                self.wait_ready()
            except ConfigurationError as exc:
                log.error("model server failed to restart", extra={"error": str(exc)})
                continue
            failures = 0


def run(spec: ServerSpec, port: int) -> None:
    """The child's body (`citeline model-server`): serve `spec` on a loopback port, with the key
    from the environment, until SIGTERM or SIGINT.

    It runs at a lower priority (`NICENESS`): its threads take every core, and the API and the
    workers, whose work is short, must still answer at once while a model loads or writes."""
    os.nice(NICENESS)
    xllamacpp = import_llama()

    key = os.environ.get(KEY_VARIABLE)
    if not key:
        raise ConfigurationError(f"{KEY_VARIABLE} must hold the key clients will present")
    params = xllamacpp.CommonParams()
    params.model.path = str(spec.path)
    # llama.cpp splits n_ctx between the slots: each gets context_tokens.
    params.n_ctx = spec.context_tokens * spec.slots
    params.n_parallel = spec.slots
    params.cont_batching = True
    params.cpuparams.n_threads = spec.threads
    params.cpuparams_batch.n_threads = spec.threads
    params.cache_ram_mib = spec.cache_ram_mib
    params.warmup = False
    params.verbosity = 0
    params.ui = False
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.api_keys = [key]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    stop.wait()
    del server  # joins llama.cpp's threads before the interpreter tears down
