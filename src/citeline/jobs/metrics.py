"""Job and queue metrics: kept in Redis by whichever worker (on whichever machine) ran the job,
and read back when Prometheus scrapes the API."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from rq import Worker

from citeline.jobs.queue import QUEUE_NAMES, queue

log = logging.getLogger(__name__)

JOB_METRICS_KEY = "citeline:metrics:jobs"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def record_job_outcome(
    pipe: redis.client.Pipeline, kind: str, outcome: str, duration_seconds: float
) -> None:
    """Count one job ending, into `pipe` (the caller sends it with the job's last writes).
    Only the bucket the duration falls in is counted; the scrape adds them up."""
    prefix = f"{kind}|{outcome}"
    pipe.hincrby(JOB_METRICS_KEY, f"{prefix}|count", 1)
    pipe.hincrbyfloat(JOB_METRICS_KEY, f"{prefix}|sum", duration_seconds)
    bound = next((b for b in DURATION_BUCKETS if duration_seconds <= b), None)
    if bound is not None:
        pipe.hincrby(JOB_METRICS_KEY, f"{prefix}|in={bound}", 1)


class QueueCollector(Collector):
    """Queue depth, live workers and job outcomes, read from Redis when Prometheus scrapes."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        depth = GaugeMetricFamily(
            "citeline_queue_depth", "Jobs waiting per queue", labels=["queue"]
        )
        workers = GaugeMetricFamily("citeline_workers", "Workers registered with Redis")
        totals = CounterMetricFamily(
            "citeline_jobs", "Jobs ended, by kind and outcome", labels=["kind", "outcome"]
        )
        durations = HistogramMetricFamily(
            "citeline_job_duration_seconds", "Job run time", labels=["kind", "outcome"]
        )
        try:
            for name in QUEUE_NAMES:
                depth.add_metric([name], queue(name, self.connection).count)
            workers.add_metric([], Worker.count(connection=self.connection))
            raw: Mapping[Any, Any] = self.connection.hgetall(JOB_METRICS_KEY)
        except redis.RedisError as exc:
            log.warning("queue metrics unavailable", extra={"error": str(exc)})
            return
        yield depth
        yield workers
        for (kind, outcome), fields in _group(raw).items():
            count = float(fields.get("count", 0))
            totals.add_metric([kind, outcome], count)
            running = 0.0
            buckets = []
            for bound in DURATION_BUCKETS:
                running += float(fields.get(f"in={bound}", 0))
                buckets.append((str(bound), running))
            buckets.append(("+Inf", count))
            durations.add_metric([kind, outcome], buckets, float(fields.get("sum", 0)))
        yield totals
        yield durations


def _group(raw: Mapping[Any, Any]) -> dict[tuple[str, str], dict[str, str]]:
    grouped: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for field, value in raw.items():
        kind, outcome, name = _text(field).split("|", 2)
        grouped[(kind, outcome)][name] = _text(value)
    return grouped


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
