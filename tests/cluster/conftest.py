"""One cluster for the whole suite: building it takes most of a minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster, make_cluster
from tests.cluster.network import can_make_hosts


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    problem = can_make_hosts()
    if problem is not None:
        pytest.skip(problem)
    made = make_cluster(api_count=2, worker_count=3)
    try:
        yield made
    finally:
        made.close()
