"""200 concurrent SSE clients each receiving one job's 50 events through a real `citeline serve`:
delivery latency (event written by the worker -> parsed by the client) and the API process's
memory. The baseline is the same clients reading one already-finished job (pure replay), in the
same run.

    .venv/bin/python -m benchmarks.sse_fanout [--clients 200] [--events 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import psutil

from benchmarks.common import bench_engines, serving, summary
from benchmarks.job_kinds import BENCH_KINDS
from citeline.resources import Resources


async def follow(
    client: httpx.AsyncClient, url: str, connected: asyncio.Event | None, expect: int
) -> tuple[list[float], list[int]]:
    latencies: list[float] = []
    seqs: list[int] = []
    async with client.stream("GET", url) as response:
        if connected is not None:
            connected.set()
        data = None
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                seqs.append(data["seq"])
                if data["type"] == "tick":
                    latencies.append(time.time() - data["data"]["sent"])
                if data["type"] in {"finished", "failed", "stopped"}:
                    break
                data = None
    assert len(latencies) == expect, f"client got {len(latencies)} ticks, expected {expect}"
    assert seqs == list(range(1, len(seqs) + 1)), "events out of order or duplicated"
    return latencies, seqs


async def fan_out(base: str, job_id: str, clients: int, events: int, go: object) -> list[float]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        connected = [asyncio.Event() for _ in range(clients)]
        url = f"{base}/v1/jobs/{job_id}/events"
        tasks = [asyncio.create_task(follow(client, url, c, events)) for c in connected]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in connected)), 60)
        if callable(go):
            go()
        results = await asyncio.gather(*tasks)
    return [latency for lat, _ in results for latency in lat]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    with bench_engines() as (settings, endpoints), serving(settings, workers=1) as (base, pid):
        resources = Resources.connect(
            settings, endpoints.database_url, endpoints.redis_url, job_kinds=BENCH_KINDS
        )
        try:
            api = psutil.Process(pid)
            idle_rss = api.memory_info().rss

            job = resources.jobs().enqueue("bench.emit", {"count": args.events, "pause": 0.02})
            go = lambda: resources.redis.set(f"bench:go:{job.id}", 1)  # noqa: E731
            peak = [idle_rss]

            async def watched() -> list[float]:
                async def sample() -> None:
                    while True:
                        peak[0] = max(peak[0], api.memory_info().rss)
                        await asyncio.sleep(0.05)

                sampler = asyncio.create_task(sample())
                try:
                    return await fan_out(base, str(job.id), args.clients, args.events, go)
                finally:
                    sampler.cancel()

            live = asyncio.run(watched())
            began = time.perf_counter()
            replay_latency = asyncio.run(
                fan_out(base, str(job.id), args.clients, args.events, None)
            )
            replay_seconds = time.perf_counter() - began
        finally:
            resources.close()
    total = args.clients * args.events
    print(
        f"{args.clients} SSE clients x {args.events} events = {total} deliveries, all in order, none lost"
    )
    print(f"live delivery latency: {summary(live)}")
    print(
        f"replay of the finished job to {args.clients} clients: {replay_seconds:.2f}s ({total / replay_seconds:.0f} events/s); {len(replay_latency)} events"
    )
    print(
        f"API process RSS: idle {idle_rss / 2**20:.0f} MiB, peak with {args.clients} streams {peak[0] / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
