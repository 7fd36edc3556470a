"""One cluster for the whole suite: building it takes most of a minute.

The suite runs with `make test-cluster` (CITELINE_CLUSTER_TESTS=1), not in `make test`: it
takes two minutes, and two runs in nine once failed on a loaded machine, a job left `queued`
while RQ's copy was on no queue (fixed in the reaper; docs/deploy.md, "Known gaps").
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster, make_cluster
from tests.cluster.network import can_make_hosts


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("CITELINE_CLUSTER_TESTS") != "1":
        pytest.skip("the cluster suite runs with `make test-cluster` (CITELINE_CLUSTER_TESTS=1)")
    problem = can_make_hosts()
    if problem is not None:
        pytest.skip(problem)
    made = make_cluster(api_count=2, worker_count=3)
    try:
        yield made
    finally:
        made.close()
