"""What the `/mcp` call guard (`citeline.mcp_server.guard`: a per-caller, per-tool rate limit
counted in Redis, and an audit row written beside the call) adds to a call of one of
Citeline's own MCP tools: `list_knowledge_bases` on an empty workspace (the cheapest tool, so
the guard's share is as large as it gets) through two apps on uvicorn in this process, one
with the guard and one with a pass-through in its place, alternating in rounds; medians and
their ratio.

    .venv/bin/python -m benchmarks.mcp_guard [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp.client.streamable_http import streamable_http_client

from benchmarks.common import bench_engines, percentile
from citeline.api.app import create_app
from citeline.mcp_server import guard
from citeline.mcp_server import server as mcp_server
from citeline.resources import Resources
from mcp import Client


class PassThrough:
    """The guard's place in the middleware chain, doing nothing."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        return await call_next(ctx)

    def close(self) -> None:
        return None


@contextmanager
def serving(app: Any) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def timed(url: str, calls: int) -> list[float]:
    out: list[float] = []

    async def run() -> None:
        async with (
            httpx2.AsyncClient(timeout=30) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            await client.call_tool("list_knowledge_bases", {})
            for _ in range(calls):
                began = time.perf_counter()
                result = await client.call_tool("list_knowledge_bases", {})
                out.append((time.perf_counter() - began) * 1000)
                if result.is_error:
                    raise SystemExit(f"the call failed: {result.content}")

    anyio.run(run)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with bench_engines() as (engine_settings, endpoints):
        # The request limits off, the tool limit far above what the run sends: it is counted.
        settings = engine_settings.model_copy(
            update={
                "rate_limit_user_per_minute": 0,
                "rate_limit_global_per_minute": 0,
                "mcp_server_tool_calls_per_minute": 1_000_000,
            }
        )
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            guarded = create_app(resources)
            # The endpoint makes its guard from the name in `server`'s namespace.
            setattr(mcp_server, "CallGuard", PassThrough)  # noqa: B010
            try:
                plain = create_app(resources)
            finally:
                setattr(mcp_server, "CallGuard", guard.CallGuard)  # noqa: B010
            samples: dict[str, list[float]] = {"without the guard (baseline)": [], "guarded": []}
            with serving(plain) as plain_url, serving(guarded) as guarded_url:
                for round_ in range(options.rounds):
                    order = [("without the guard (baseline)", plain_url), ("guarded", guarded_url)]
                    for name, url in order if round_ % 2 == 0 else reversed(order):
                        samples[name] += timed(url, options.calls)
        finally:
            resources.close()
    baseline = statistics.median(samples["without the guard (baseline)"])
    print(f"{options.calls} calls x {options.rounds} rounds per mode")
    print(f"{'mode':30} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:30} {p50:8.2f} {percentile(values, 95):8.2f} {p50 / baseline:10.2f}")


if __name__ == "__main__":
    main()
