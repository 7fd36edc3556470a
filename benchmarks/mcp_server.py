"""What MCP adds to a search: the same query through `citeline serve`'s REST route
`GET /v1/knowledge-bases/{kb}/search` (the baseline) and through its `/mcp` tool `search`
with the official `mcp` client, on one connection each, for

- the 2026-07-28 protocol (what `mcp` 2.x speaks by default: one POST per call),
- the 2025 handshake protocol (what most desktop clients still speak; stateless here too),
- a new MCP client per call (connect, then call: what a client without pooling pays).

Queries alternate between the modes in rounds; p50 latencies are reported with each mode's
ratio to the REST baseline measured in the same run.

    .venv/bin/python -m benchmarks.mcp_server [--queries 100] [--rounds 3] [--documents 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import httpx2
from mcp.client.streamable_http import streamable_http_client

from benchmarks.common import ROOT, bench_engines, ingest_files, percentile, serving
from citeline.resources import Resources
from mcp import Client

CORPUS = ROOT.parent / "shared" / "eval" / "debian-faq" / "corpus"
QUERIES = [
    "how do I upgrade to a new release",
    "what is a virtual package",
    "kernel modules",
    "where do I get the installation images",
    "how are packages signed",
    "security updates",
    "what does testing mean",
    "compile my own kernel",
]

Call = Callable[[str], Awaitable[Any]]


def _client(url: str, http: httpx2.AsyncClient, mode: str) -> Client:
    return Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode)


async def measure(url: str, kb: str, queries: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    async with (
        httpx2.AsyncClient(base_url=url, timeout=60) as http,
        _client(url, http, "auto") as modern,
        _client(url, http, "legacy") as legacy,
    ):

        async def rest(query: str) -> Any:
            response = await http.get(
                f"/v1/knowledge-bases/{kb}/search", params={"q": query, "k": 8}
            )
            response.raise_for_status()

        async def tool(client: Client, query: str) -> Any:
            result = await client.call_tool("search", {"query": query, "knowledge_base": kb})
            if result.is_error:
                raise SystemExit(f"search failed: {result.content}")

        async def fresh(query: str) -> Any:
            async with _client(url, http, "auto") as client:
                await tool(client, query)

        modes: dict[str, Call] = {
            "REST search (baseline)": rest,
            "MCP search, 2026-07-28": lambda q: tool(modern, q),
            "MCP search, 2025 handshake": lambda q: tool(legacy, q),
            "MCP, new client per call": fresh,
        }
        for call in modes.values():  # warm up: embedder, caches, connections
            await call(QUERIES[0])
        for round_ in range(rounds):
            order = list(modes.items())
            if round_ % 2:
                order.reverse()
            for name, call in order:
                for index in range(queries):
                    began = time.perf_counter()
                    await call(QUERIES[index % len(QUERIES)])
                    samples.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--documents", type=int, default=8)
    options = parser.parse_args()
    files = sorted(CORPUS.glob("*.html"))[: options.documents]
    with bench_engines() as (engine_settings, endpoints):
        # Rate limits off: the run sends more than the 600 requests a minute one user may,
        # and more than the 60 calls a minute of one tool.
        settings = engine_settings.model_copy(
            update={
                "rate_limit_user_per_minute": 0,
                "rate_limit_global_per_minute": 0,
                "mcp_server_tool_calls_per_minute": 0,
            }
        )
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            kb_id = resources.knowledge().create("debian").id
        finally:
            resources.close()
        ingest_files(settings, endpoints, kb_id, [(path, path.name) for path in files])
        kb = str(kb_id)
        with serving(settings) as (url, _):
            httpx.get(f"{url}/health").raise_for_status()
            samples = anyio.run(measure, url, kb, options.queries, options.rounds)
    baseline = statistics.median(samples["REST search (baseline)"])
    print(f"{len(files)} documents, {options.queries} queries x {options.rounds} rounds per mode")
    print(f"{'mode':30} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:30} {p50:8.2f} {percentile(values, 95):8.2f} {p50 / baseline:10.2f}")


if __name__ == "__main__":
    main()
