"""What the MCP client tests share: the real servers they run and a Citeline set up for them.

- `mcp-server-time` (PyPI, stdio), installed beside the test interpreter;
- `@modelcontextprotocol/server-everything` (npm, stdio), pinned in tests/mcp/package-lock.json
  and installed by scripts/test.sh into tests/mcp/node_modules;
- `tests.mcp.http_server`, a streamable HTTP server started per test in its own process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")
NODE = shutil.which("node")
EVERYTHING = HERE / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
needs_everything = pytest.mark.skipif(
    NODE is None or not EVERYTHING.exists(),
    reason="server-everything is not installed (scripts/test.sh runs npm ci in tests/mcp)",
)


def stdio_commands() -> list[str]:
    return [TIME_SERVER, *([NODE] if NODE else [])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpServer:
    """`tests.mcp.http_server` (or another test server `module`) in a process of its own (one
    of its tools kills it)."""

    def __init__(self, module: str = "tests.mcp.http_server") -> None:
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> HttpServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, str(self.port)],
            cwd=HERE.parents[1],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the test MCP server exited at start")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the test MCP server did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def http_mcp() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()
