"""A process given a Redis that refuses it stops at once with what to fix, no stack trace."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cluster.cluster import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def worker_with(cluster: Cluster, redis_url: str) -> subprocess.CompletedProcess[str]:
    host = cluster.workers["w3"]
    return subprocess.run(
        ["ip", "netns", "exec", host.netns, sys.executable, "-m", "citeline", "worker"],
        env={**cluster.env, "CITELINE_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("password", "message"),
    [("wrong", "refused the credentials in CITELINE_REDIS_URL"), ("", "needs a password")],
)
def test_a_redis_that_refuses_the_worker_stops_it_with_what_to_fix(
    cluster: Cluster, password: str, message: str
) -> None:
    address = cluster.valkey.host.address
    refused = worker_with(
        cluster, f"redis://{':' + password + '@' if password else ''}{address}:6379/0"
    )
    assert refused.returncode == 1, refused.stderr
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
