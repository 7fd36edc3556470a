"""The shared llama.cpp server (citeline.llm.model_server) on a real GGUF: workers' requests
through it behave as in-process ones, concurrent ones are batched, and a dead server is
restarted while callers get a retryable error meanwhile."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from citeline.errors import InvalidInput, ProviderError
from citeline.llm.bundled import gguf_path
from citeline.llm.messages import ChatRequest, ChatResult, FinishReason, ToolSpec
from citeline.llm.model_server import ModelServer, ServerSpec, SharedModel, free_port
from citeline.llm.providers import local
from citeline.llm.providers.factory import shared_server
from citeline.llm.providers.local import LocalModelConfig, LocalProvider
from citeline.settings import Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MODELS = ROOT / ".cache" / "models"


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    path = gguf_path("smollm2-135m", MODELS)
    running = ModelServer(
        ServerSpec(path=path, slots=2, context_tokens=1024, threads=2, cache_ram_mib=0)
    )
    running.start()
    running.wait_ready()
    yield running
    running.stop()
    assert running.process is not None and running.process.poll() is not None


def provider(shared: SharedModel) -> LocalProvider:
    config = LocalModelConfig(gguf_path("smollm2-135m", MODELS), server=shared)
    return LocalProvider(config, timeout_seconds=30)


def ask(text: str, **fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": text}], "temperature": 0, **fields}
    )


def test_a_request_streams_through_the_shared_server(server: ModelServer) -> None:
    result = ChatResult.collect(
        list(provider(server.shared).stream("smol", ask("Write about the sea.", max_tokens=12)))
    )
    assert result.text and result.finish_reason is FinishReason.length
    assert result.usage.output_tokens == 12 and result.usage.input_tokens > 3


def test_concurrent_requests_share_the_one_model(server: ModelServer) -> None:
    results: list[ChatResult] = []

    def one(topic: str) -> None:
        request = ask(f"Write about {topic}.", max_tokens=16)
        results.append(ChatResult.collect(list(provider(server.shared).stream("s", request))))

    threads = [threading.Thread(target=one, args=(t,)) for t in ("rivers", "hills", "cities")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    assert all(r.usage.output_tokens == 16 for r in results)


def test_json_schema_and_tool_calls_keep_working(server: ModelServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    shaped = ChatResult.collect(
        list(provider(server.shared).stream("s", ask("Name a city.", json_schema=schema)))
    )
    assert isinstance(json.loads(shaped.text)["city"], str)
    tool = ToolSpec(
        name="get_time",
        description="The current time in a time zone.",
        parameters={"type": "object", "properties": {"zone": {"type": "string"}}},
    )
    called = ChatResult.collect(
        list(provider(server.shared).stream("s", ask("What time is it?", tools=[tool])))
    )
    # The constrained form holds the tiny model to an answer or a call of the one tool.
    assert called.text or [c.name for c in called.tool_calls] == ["get_time"]


def test_a_prompt_over_the_context_is_the_callers_error(server: ModelServer) -> None:
    with pytest.raises(InvalidInput, match="tokens"):
        list(provider(server.shared).stream("s", ask("word " * 3000, max_tokens=8)))


def test_a_wrong_key_is_refused_not_retried(server: ModelServer) -> None:
    wrong = SharedModel(server.shared.url, "not-the-key")
    with pytest.raises(ProviderError) as refused:
        list(provider(wrong).stream("s", ask("Hi", max_tokens=4)))
    assert refused.value.upstream_status == 401 and not refused.value.retryable


def test_a_killed_server_is_restarted_and_waited_for(server: ModelServer) -> None:
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    # The request waits for the restarted server rather than failing the job.
    result = ChatResult.collect(list(provider(server.shared).stream("s", ask("Hi", max_tokens=4))))
    assert result.usage.output_tokens >= 1
    assert server.restarts == 1


def test_a_server_that_never_comes_up_is_a_retryable_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local, "SERVER_WAIT_SECONDS", 1.0)
    nobody = SharedModel(f"http://127.0.0.1:{free_port()}", "k")
    with pytest.raises(ProviderError, match="unreachable") as down:
        list(provider(nobody).stream("s", ask("Hi", max_tokens=4)))
    assert down.value.retryable


def test_workers_use_the_server_only_for_the_model_it_holds() -> None:
    settings = Settings(
        llm_model="qwen2.5-coder-1.5b",
        llm_server_url="http://127.0.0.1:9",
        llm_server_key="k",
    )
    assert shared_server("qwen2.5-coder-1.5b", settings) == SharedModel("http://127.0.0.1:9", "k")
    assert shared_server("smollm2-135m", settings) is None
    assert shared_server("qwen2.5-coder-1.5b", Settings()) is None
