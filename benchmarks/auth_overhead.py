"""What signing in costs per request: `GET /v1/knowledge-bases` (a small database read)
through a real uvicorn on loopback, sequential keep-alive requests, for

- local mode with rate limits off (the baseline: no credential checked, nothing counted),
- local mode with rate limits on (two sliding-window counters in Redis per request),
- a JWT access token (signature check, then the user and membership read from PostgreSQL),
- an API key (SHA-256 of the key, one row read).

The modes alternate in rounds and medians are reported, with each mode's latency as a ratio to
the baseline's, measured in the same run.

    .venv/bin/python -m benchmarks.auth_overhead [--requests 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from benchmarks.common import bench_engines, percentile
from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.auth.accounts import Accounts
from citeline.auth.api_keys import ApiKeys
from citeline.auth.signin import SignIn
from citeline.resources import Resources

PASSWORD = "benchmark password"


@contextmanager
def serving(resources: Resources) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(resources), host="127.0.0.1", port=0, log_config=None)
    )
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


def timed(url: str, headers: dict[str, str], requests: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, headers=headers) as client:
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
    with bench_engines() as (engine_settings, endpoints):
        settings = engine_settings.model_copy(update={"rate_limit_user_per_minute": 10**9})
        base = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            accounts = Accounts(base.sessions, Access.system())
            accounts.create_user("bench@example.com", PASSWORD, workspace_id="default")
            for index in range(5):
                base.knowledge().create(f"kb-{index}")
            token = SignIn(base.sessions, base.redis, settings).password(
                "bench@example.com", PASSWORD, "bench"
            )
            owner = Access("system", "default", Role.owner)
            _, key = ApiKeys(base.sessions, owner).create("bench", Role.member)
            counted = dataclasses.replace(
                base,
                settings=settings.model_copy(
                    update={"auth": "local", "rate_limit_api_key_per_minute": 10**9}
                ),
            )
            uncounted = dataclasses.replace(
                base,
                settings=counted.settings.model_copy(
                    update={
                        "rate_limit_user_per_minute": 0,
                        "rate_limit_api_key_per_minute": 0,
                        "rate_limit_global_per_minute": 0,
                    }
                ),
            )
            samples: dict[str, list[float]] = {}
            with serving(uncounted) as plain, serving(counted) as url:
                modes = {
                    "local, no limits (baseline)": (plain, {}),
                    "local, rate limits": (url, {}),
                    "JWT, rate limits": (url, {"Authorization": f"Bearer {token.access_token}"}),
                    "API key, rate limits": (url, {"Authorization": f"Bearer {key}"}),
                }
                for round_ in range(options.rounds):
                    order = list(modes.items())
                    if round_ % 2:
                        order.reverse()
                    for name, (target, headers) in order:
                        samples.setdefault(name, []).extend(
                            timed(target, headers, options.requests)
                        )
        finally:
            base.close()
    baseline = statistics.median(samples["local, no limits (baseline)"])
    print(f"{'mode':30} {'p50 ms':>8} {'p95 ms':>8} {'ratio p50':>10}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:30} {p50:8.2f} {percentile(values, 95):8.2f} {p50 / baseline:10.2f}")


if __name__ == "__main__":
    main()
