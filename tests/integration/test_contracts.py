"""The seeds' own contracts, tried with clients written only from them:

- the asynchronous RAG service: `POST /chat?query=...` (a query parameter, no body, no
  knowledge base) answers `{"job_id"}`; `GET /job-status/{id}` gives `status`; `GET
  /result/{id}` gives `{"result": "..."}`;
- the gateway's model service: `POST /models/{model_id}/predict {"inputs": [...], "version"?}`
  answers `{"model", "version", "predictions": [...]}`.

The model is a scripted OpenAI-compatible server (a remote provider, outside the system); the
queue, the database, the workers and the embeddings are the real ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from citeline.api.app import create_app
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, wait_for
from tests.fake_llm_server import FakeLLMServer, Reply

LIGHTHOUSE = b"""# Varnholm lighthouse

The lighthouse of Varnholm was built in 1847 by the harbour guild. Its lamp burned whale oil
until 1902, when a paraffin lamp replaced it.
"""


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
    )


@pytest.fixture
def model() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=Reply("The lighthouse was built in 1847 [1].")) as server:
        yield server


@pytest.fixture
def api(resources: Resources, start_worker: WorkerFactory, model: FakeLLMServer) -> Iterator[str]:
    registry = resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=model.openai_base_url))
    for alias in ("answer", "default"):
        registry.set_routes(alias, [("scripted", 1.0)])
    start_worker(mode="inprocess")
    with LiveServer(create_app(resources)) as url:
        yield url


def ingest(api: str, name: str, files: list[tuple[str, bytes]]) -> str:
    kb: str = httpx.post(f"{api}/v1/knowledge-bases", json={"name": name}).json()["id"]
    httpx.post(f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in files])

    def ready() -> bool:
        docs = httpx.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return all(doc["status"] == "ready" for doc in docs)

    wait_for(ready, timeout=120)
    return kb


# A client of the asynchronous RAG service, written from its contract alone.


def rag_ask(base: str, query: str) -> str:
    response = httpx.post(f"{base}/chat", params={"query": query})
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


def rag_result(base: str, job_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/job-status/{job_id}").json()["status"]
        if status in ("finished", "failed", "stopped"):
            break
        time.sleep(0.2)
    result: str = httpx.get(f"{base}/result/{job_id}").json()["result"]
    return result


def test_the_asynchronous_rag_contract(api: str, model: FakeLLMServer) -> None:
    ingest(api, "harbour", [("lighthouse.md", LIGHTHOUSE)])
    answer = rag_result(api, rag_ask(api, "When was the lighthouse of Varnholm built?"))
    assert "1847" in answer and "[1]" in answer
    # The rich form is unchanged beside `result`.
    job = rag_ask(api, "When was the lighthouse of Varnholm built?")
    rag_result(api, job)
    rich = httpx.get(f"{api}/result/{job}").json()
    assert rich["result"] == rich["answer"]
    assert rich["citations"][0]["text"] in LIGHTHOUSE.decode()
    assert model.requests, "the scripted model was asked"


def test_a_question_without_a_knowledge_base_needs_a_clear_default(
    api: str, resources: Resources
) -> None:
    empty = httpx.post(f"{api}/chat", params={"query": "Anything?"})
    assert empty.status_code == 409 and "no knowledge base" in empty.json()["detail"]
    ingest(api, "harbour", [("lighthouse.md", LIGHTHOUSE)])
    ingest(api, "garden", [("roses.md", b"# Roses\n\nRoses need six hours of sun.\n")])
    several = httpx.post(f"{api}/chat", params={"query": "When was the lighthouse built?"})
    assert several.status_code == 409
    assert "'garden'" in several.json()["detail"] and "'harbour'" in several.json()["detail"]
    assert "CITELINE_DEFAULT_KNOWLEDGE_BASE" in several.json()["detail"]
    nothing = httpx.post(f"{api}/chat")
    assert nothing.status_code == 422 and "query" in nothing.json()["detail"]
    configured = resources.settings.model_copy(update={"default_knowledge_base": "harbour"})
    with LiveServer(create_app(Resources(**{**resources.__dict__, "settings": configured}))) as url:
        answer = rag_result(url, rag_ask(url, "When was the lighthouse of Varnholm built?"))
    assert "1847" in answer


# A client of the gateway's model service, written from its contract alone.


def predict(base: str, model_id: str, inputs: list[str], **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{base}/models/{model_id}/predict", json={"inputs": inputs, **extra}, timeout=60
    )


def test_the_model_gateway_predict_contract(
    api: str, resources: Resources, model: FakeLLMServer
) -> None:
    model.plan(Reply("Hello, Ada."), Reply("Goodbye, Ada."))
    made = predict(api, "default", ["Greet Ada.", "Say goodbye to Ada."])
    assert made.status_code == 200, made.text
    body = made.json()
    assert (body["model"], body["version"]) == ("default", "scripted@1")
    assert body["predictions"] == ["Hello, Ada.", "Goodbye, Ada."]

    # An A/B split applies: the whole request goes to one variant, named in `version`.
    with FakeLLMServer(default=Reply("from b")) as other:
        registry = resources.models().registry
        registry.add_version(NewVersion("scripted", "openai", "m2", base_url=other.openai_base_url))
        registry.set_routes("default", [("scripted@1", 0.0), ("scripted@2", 1.0)])
        split = predict(api, "default", ["Hi"]).json()
        assert (split["version"], split["predictions"]) == ("scripted@2", ["from b"])
        pinned = predict(api, "scripted", ["Hi"], version=1).json()
        assert pinned["version"] == "scripted@1"

    unknown = predict(api, "no-such-model", ["Hi"])
    assert unknown.status_code == 404
    empty = predict(api, "default", [])
    assert empty.status_code == 422
