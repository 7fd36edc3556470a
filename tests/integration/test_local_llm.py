"""The local provider on real GGUF models: SmolLM2-135M for behaviour, the default
Qwen2.5-Coder-1.5B where only a capable model can show it (tool calls)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from citeline.errors import InvalidInput
from citeline.llm.bundled import gguf_path
from citeline.llm.messages import (
    ChatRequest,
    ChatResult,
    Finish,
    FinishReason,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
)
from citeline.llm.providers.local import LocalModelConfig, LocalProvider
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MODELS = ROOT / ".cache" / "models"


@pytest.fixture(scope="module")
def smol() -> LocalProvider:
    return LocalProvider(LocalModelConfig(gguf_path("smollm2-135m", MODELS)))


def ask(text: str, **fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": text}], "temperature": 0, **fields}
    )


def test_tokens_stream_one_by_one_and_end_with_usage(smol: LocalProvider) -> None:
    events = list(smol.stream("smol", ask("Write a short poem about the sea.", max_tokens=20)))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 10  # streamed, not one block
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason is FinishReason.length
    assert finish.usage.output_tokens == 20 and finish.usage.input_tokens > 5


def test_stop_sequences_and_json_schema(smol: LocalProvider) -> None:
    stopped = ChatResult.collect(
        list(smol.stream("smol", ask("Count: 1, 2, 3, 4, 5, 6, 7", stop=["5"], max_tokens=40)))
    )
    assert "5" not in stopped.text and stopped.finish_reason is FinishReason.stop
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    shaped = ChatResult.collect(
        list(smol.stream("smol", ask("Describe Paris.", json_schema=schema, max_tokens=60)))
    )
    value = json.loads(shaped.text)
    assert isinstance(value["city"], str) and isinstance(value["population"], int)


def test_closing_the_stream_stops_the_generation(smol: LocalProvider) -> None:
    stream = smol.stream("smol", ask("List the numbers from 1 to 1000.", max_tokens=1500))
    for _, _event in zip(range(3), stream, strict=False):
        pass
    began = time.monotonic()
    stream.close()  # type: ignore[attr-defined]
    # The model is free again at once: a short request does not wait behind 1,500 tokens.
    result = ChatResult.collect(list(smol.stream("smol", ask("Hi", max_tokens=4))))
    assert result.usage.output_tokens <= 4
    assert time.monotonic() - began < 10


def test_a_follow_up_reuses_the_prompt_cache(smol: LocalProvider) -> None:
    passages = " ".join(f"Passage {i}: the package apt-{i} does job {i}." for i in range(40))
    first = ChatResult.collect(
        list(smol.stream("smol", ask(f"{passages}\nWhich package does job 3?", max_tokens=4)))
    )
    again = ChatResult.collect(
        list(smol.stream("smol", ask(f"{passages}\nWhich package does job 7?", max_tokens=4)))
    )
    assert first.usage.input_tokens > 300
    assert again.usage.cached_tokens >= first.usage.input_tokens - 20


def test_a_prompt_over_the_context_is_refused_clearly() -> None:
    small = LocalProvider(LocalModelConfig(gguf_path("smollm2-135m", MODELS), context_tokens=256))
    with pytest.raises(InvalidInput, match="takes at most 256") as caught:
        list(small.stream("smol", ask("word " * 600, max_tokens=4)))
    assert caught.value.field == "messages"


WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
SEARCH = ToolSpec(
    name="search_docs",
    description="Search the documentation.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
)


def test_tool_replies_are_held_to_a_call_or_an_answer(smol: LocalProvider) -> None:
    for question in ("What is the weather in Oslo?", "Say hello."):
        events = list(smol.stream("smol", ask(question, tools=[WEATHER, SEARCH], max_tokens=60)))
        finish = events[-1]
        assert isinstance(finish, Finish)
        calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
        if calls:
            assert calls[0].name in {"get_weather", "search_docs"}
            assert finish.reason is FinishReason.tool_calls
        else:
            assert all(isinstance(e, TextDelta) for e in events[:-1])


def test_the_default_model_calls_the_right_tool() -> None:
    qwen = LocalProvider(LocalModelConfig(gguf_path("qwen2.5-coder-1.5b", MODELS)))
    events = list(
        qwen.stream("qwen", ask("What is the weather in Paris?", tools=[WEATHER, SEARCH]))
    )
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"})]
    answered = ChatResult.collect(
        list(qwen.stream("qwen", ask("What is 2 + 2?", tools=[WEATHER, SEARCH])))
    )
    assert answered.tool_calls == [] and "4" in answered.text


def test_paths_that_are_not_models_are_refused(tmp_path: Path) -> None:
    from citeline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="neither a bundled model"):
        gguf_path("gpt-17", tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ConfigurationError, match="neither a bundled model"):
        gguf_path(str(tmp_path / "notes.txt"), tmp_path)
