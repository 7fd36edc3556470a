"""One trace from an HTTP request to the model call in a worker, exported over OTLP by a real
`citeline serve` and its worker to a receiver started here; and an unreachable collector that
slows nothing and is counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Serve, free_port
from tests.fake_llm_server import FakeLLMServer, Reply
from tests.otlp_receiver import OtlpReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTION = "When was the lighthouse of Varnholm built?"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def traced(data_dir: Path, endpoint: str, **extra: str) -> Serve:
    return Serve(
        data_dir,
        workers=1,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        CITELINE_OUTBOUND_ALLOWED_HOSTS='["127.0.0.1"]',
        **extra,
    )


def test_one_trace_from_the_request_to_the_model_call(data_dir: Path) -> None:
    with (
        OtlpReceiver() as receiver,
        FakeLLMServer(default=Reply("The lighthouse was built in 1847 [1].")) as model,
    ):
        serve = traced(data_dir, receiver.endpoint)
        with httpx.Client(base_url=serve.url, timeout=30) as api:
            api.post(
                "/v1/models",
                json={"name": "scripted", "provider": "openai", "model": "m",
                      "base_url": model.openai_base_url},
            ).raise_for_status()  # fmt: skip
            api.put("/v1/models/answer/routes", json={"routes": [{"model": "scripted"}]})
            kb = api.post("/v1/knowledge-bases", json={"name": "harbour"}).json()["id"]
            api.post(
                f"/v1/knowledge-bases/{kb}/documents",
                files={"files": ("lighthouse.md", b"# Varnholm\n\nIt was built in 1847.\n")},
            ).raise_for_status()
            wait_for(
                lambda: api.get(f"/v1/knowledge-bases/{kb}").json()["chunk_count"] > 0,
                timeout=120,
            )
            asked = api.post("/chat", params={"query": QUESTION}, headers={"traceparent": PARENT})
            assert asked.status_code == 202, asked.text
            job = asked.json()["job_id"]
            wait_for(
                lambda: api.get(f"/job-status/{job}").json()["status"] == "finished", timeout=120
            )
            garbled = api.post("/chat", params={"query": QUESTION}, headers={"traceparent": "x"})
            assert garbled.status_code == 202  # a malformed context is ignored, never an error

        # The worker exports the job's spans as the job ends, after its status says finished.
        wait_for(
            lambda: any(
                s.trace_id == TRACE_ID and s.name == "job.run answers.answer"
                for s in receiver.spans
            ),
            timeout=30,
        )
        generations = receiver.wait_for("llm.generate")
        ours = [s for s in receiver.spans if s.trace_id == TRACE_ID]
        by_name = {s.name: s for s in ours}
        server = by_name["POST /chat"]
        enqueue = by_name["job.enqueue answers.answer"]
        run = by_name["job.run answers.answer"]
        search = by_name["knowledge.search"]
        generate = next(s for s in generations if s.trace_id == TRACE_ID)
        assert server.parent_span_id == "00f067aa0ba902b7"  # the caller's span
        assert enqueue.parent_span_id == server.span_id
        assert run.parent_span_id == enqueue.span_id
        assert (server.service, run.service) == ("citeline-api", "citeline-worker")
        assert search.parent_span_id == run.span_id
        assert generate.parent_span_id == run.span_id
        assert server.attributes["enduser.id"].startswith("user:")
        assert server.attributes["citeline.workspace"] == "default"
        assert generate.attributes["gen_ai.response.model"] == "scripted@1"
        assert generate.attributes["gen_ai.usage.input_tokens"] > 0
        assert generate.attributes["gen_ai.usage.output_tokens"] > 0
        assert "citeline.llm.first_token_ms" in generate.attributes
        # No prompt, question or document text travels in a span.
        for span in ours:
            assert "1847" not in json.dumps(span.attributes)
            assert "lighthouse" not in json.dumps(span.attributes).lower()


def _dropped(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("citeline_trace_spans_dropped_total"):
            return float(line.split()[-1])
    raise AssertionError("no citeline_trace_spans_dropped_total in /metrics")


def test_an_unreachable_collector_slows_nothing_and_drops_are_counted(data_dir: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    serve = traced(
        data_dir, nowhere, OTEL_BSP_MAX_QUEUE_SIZE="4", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4"
    )
    with httpx.Client(base_url=serve.url, timeout=10) as api:
        began = time.monotonic()
        for _ in range(60):
            assert api.get("/v1/knowledge-bases").status_code == 200
        elapsed = time.monotonic() - began
        assert elapsed < 30, f"60 requests took {elapsed:.1f} s"
        assert _dropped(api.get("/metrics").text) > 0
