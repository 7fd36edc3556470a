"""Prometheus metrics of the HTTP process (job and queue metrics: `citeline.jobs.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "citeline_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "citeline_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
