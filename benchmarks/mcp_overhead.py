"""What Citeline's MCP client adds to a tool call: the same tool on the same server called
through `McpToolbox.call` (policy check, schema validation, rate limit, audit row queued for
its batch, the toolbox's event-loop thread) and directly with the `mcp` SDK's `ClientSession`, each over a
connection kept open, sequential calls, alternating in rounds; medians and their ratio.

Two servers: `mcp-server-time` over stdio (`get_current_time`) and a streamable HTTP server
this module starts in a subprocess (`echo`).

    .venv/bin/python -m benchmarks.mcp_overhead [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

from benchmarks.common import bench_engines, percentile
from citeline.auth import Access, Role
from citeline.mcp.adapter import SANDBOX
from citeline.resources import Resources

TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")
MEMBER = Access("user:bench", "default", Role.member)


def serve(port: int) -> None:
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    server = MCPServer("bench", log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        """Repeat the text."""
        return text

    server.run(transport="streamable-http", host="127.0.0.1", port=port)


def start_http() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.mcp_overhead", "--serve", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise TimeoutError("the benchmark's MCP server did not start")


class Direct:
    """The baseline: the SDK's ClientSession on the same connection, called from this thread
    through a blocking portal, as a synchronous caller must."""

    def __init__(self, transport: str, target: str) -> None:
        from mcp.client.streamable_http import streamable_http_client

        from mcp import ClientSession, StdioServerParameters, stdio_client

        self._portal_context = start_blocking_portal()
        self.portal = self._portal_context.__enter__()

        async def session_context() -> Any:
            from contextlib import AsyncExitStack

            stack = AsyncExitStack()
            if transport == "stdio":
                # The same sandboxed start as Citeline's, so only the client differs.
                parameters = StdioServerParameters(
                    command=sys.executable,
                    args=["-I", "-S", str(SANDBOX), "120", "2048", "--", target],
                )
                read, write = await stack.enter_async_context(stdio_client(parameters))
            else:
                read, write = await stack.enter_async_context(streamable_http_client(target))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            return stack, session

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def held() -> Any:
            stack, session = await session_context()
            try:
                yield session
            finally:
                await stack.aclose()

        self._held = self.portal.wrap_async_context_manager(held())
        self.session = self._held.__enter__()

    def call(self, name: str, arguments: dict[str, Any]) -> None:
        result = self.portal.call(self.session.call_tool, name, arguments)
        assert not result.is_error

    def close(self) -> None:
        self._held.__exit__(None, None, None)
        self._portal_context.__exit__(None, None, None)


def timed(call: Callable[[], None], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def compare(
    direct: Direct,
    toolbox: Any,
    tool: str,
    arguments: dict[str, Any],
    prefix: str,
    calls: int,
) -> tuple[list[float], list[float]]:
    def through() -> None:
        result = toolbox.call(prefix + tool, arguments)
        assert not result.is_error, result.text

    return timed(lambda: direct.call(tool, arguments), calls), timed(through, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    load_before = os.getloadavg()[0]
    process, url = start_http()
    try:
        with bench_engines() as (engine_settings, endpoints):
            settings = engine_settings.model_copy(
                update={
                    "mcp_stdio_commands": [TIME_SERVER],
                    "outbound_allowed_hosts": ["127.0.0.1"],
                    "mcp_tool_calls_per_minute": 10**9,  # counted, never reached
                }
            )
            resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
            root = Access("system", "default", Role.owner, instance_admin=True)
            servers = resources.mcp_servers(root)
            servers.register("time", "stdio", command=TIME_SERVER)
            servers.register("bench", "http", url=url)
            toolbox = resources.mcp_toolbox(MEMBER)
            toolbox.tools()
            cases = [
                ("stdio", TIME_SERVER, "get_current_time", {"timezone": "UTC"}, "time__"),
                ("http", url, "echo", {"text": "hello"}, "bench__"),
            ]
            results: dict[str, list[float]] = {}
            direct = {transport: Direct(transport, target) for transport, target, *_ in cases}
            try:
                for _ in range(args.rounds):
                    for transport, _target, tool, arguments, prefix in cases:
                        sdk, ours = compare(
                            direct[transport], toolbox, tool, arguments, prefix, args.calls
                        )
                        results.setdefault(f"{transport} direct (SDK)", []).extend(sdk)
                        results.setdefault(f"{transport} McpToolbox", []).extend(ours)
            finally:
                for client in direct.values():
                    client.close()
                toolbox.close()
                resources.close()
    finally:
        process.kill()
        process.wait()
    # The ratio moves with the machine's load (other processes delay the Redis round trip and
    # the event-loop thread more than the SDK's path): say what it was.
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'path':24} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    for transport in ("stdio", "http"):
        baseline = statistics.median(results[f"{transport} direct (SDK)"])
        for name in (f"{transport} direct (SDK)", f"{transport} McpToolbox"):
            values = results[name]
            p50 = statistics.median(values)
            print(f"{name:24} {p50:8.2f} {percentile(values, 95):8.2f} {p50 / baseline:10.2f}")


if __name__ == "__main__":
    main()
