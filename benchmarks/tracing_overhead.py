"""What tracing costs per request: `GET /v1/knowledge-bases` on two `citeline serve` processes
against the same engines, one exporting its spans over OTLP to a receiver on loopback, one with
tracing off (the baseline). Sequential keep-alive requests, the two alternating in rounds;
medians and the traced/untraced ratio, measured in the same run.

    .venv/bin/python -m benchmarks.tracing_overhead [--requests 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from tests.otlp_receiver import OtlpReceiver

from benchmarks.common import bench_engines, percentile, serving
from citeline.resources import Resources


def timed(url: str, requests: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url) as client:
        client.get("/v1/knowledge-bases").raise_for_status()
        for _ in range(requests):
            began = time.perf_counter()
            client.get("/v1/knowledge-bases").raise_for_status()
            out.append((time.perf_counter() - began) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with bench_engines() as (settings, endpoints), OtlpReceiver() as receiver:
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            for index in range(5):
                resources.knowledge().create(f"kb-{index}")
        finally:
            resources.close()
        traced_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        samples: dict[str, list[float]] = {"tracing off": [], "tracing on": []}
        # Rate limits off: the runs send more requests a minute than a person may.
        unlimited = settings.model_copy(
            update={
                "rate_limit_user_per_minute": 0,
                "rate_limit_api_key_per_minute": 0,
                "rate_limit_global_per_minute": 0,
            }
        )
        with (
            serving(unlimited) as (plain, _),
            serving(unlimited, env=traced_env) as (traced, _),
        ):
            for round_ in range(options.rounds):
                order = [("tracing off", plain), ("tracing on", traced)]
                if round_ % 2:
                    order.reverse()
                for name, url in order:
                    samples[name].extend(timed(url, options.requests))
            time.sleep(1)
        exported = len(receiver.spans)
    baseline = statistics.median(samples["tracing off"])
    print(f"{'mode':14} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:14} {p50:8.2f} {percentile(values, 95):8.2f} {p50 / baseline:10.2f}")
    print(f"spans received by the collector: {exported}")
    if exported == 0:
        raise SystemExit("the traced server exported nothing")


if __name__ == "__main__":
    main()
