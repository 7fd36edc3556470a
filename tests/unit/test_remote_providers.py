"""The OpenAI-compatible and Anthropic providers against a fake vendor server over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from citeline.errors import InvalidInput, ProviderError
from citeline.llm.messages import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    Finish,
    FinishReason,
    Message,
    Role,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    ToolSpec,
    Usage,
)
from citeline.llm.providers.anthropic import AnthropicProvider
from citeline.llm.providers.base import ChatProvider
from citeline.llm.providers.openai_compat import OpenAICompatibleProvider
from tests.fake_llm_server import Fail, FakeLLMServer, Hang, Reply

VENDORS = ["openai", "anthropic"]
HELLO = ChatRequest(messages=[Message.user("Say hello")])
WEATHER = ToolSpec(
    name="weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CALL = ToolCall(id="call_1", name="weather", arguments={"city": "Oslo", "units": ["c"]})

MakeProvider = Callable[..., ChatProvider]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def make_provider(server: FakeLLMServer) -> Iterator[MakeProvider]:
    """Builds a provider of the given vendor on the fake server; closes them all afterwards."""
    made: list[ChatProvider] = []

    def make(vendor: str, timeout_seconds: float = 5.0) -> ChatProvider:
        provider: ChatProvider
        if vendor == "openai":
            provider = OpenAICompatibleProvider(
                server.openai_base_url, "sk-test", timeout_seconds=timeout_seconds
            )
        else:
            provider = AnthropicProvider(
                "sk-ant-test", base_url=server.base_url, timeout_seconds=timeout_seconds
            )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def events_of(provider: ChatProvider, request: ChatRequest = HELLO) -> list[ChatEvent]:
    return list(provider.stream("m", request))


@pytest.mark.parametrize("vendor", VENDORS)
def test_text_streams_as_deltas_then_finish_with_usage(
    vendor: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("Hello there, friend", chunks=3, input_tokens=12, output_tokens=4))
    server.plan(Reply("cached", chunks=1, cached_tokens=8, finish="length"))
    provider = make_provider(vendor)

    assert events_of(provider) == [
        TextDelta(text="Hello "),
        TextDelta(text="there,"),
        TextDelta(text=" friend"),
        Finish(reason=FinishReason.stop, usage=Usage(input_tokens=12, output_tokens=4)),
    ]
    result = ChatResult.collect(events_of(provider))
    assert result.finish_reason is FinishReason.length
    assert result.usage == Usage(input_tokens=11, output_tokens=7, cached_tokens=8)


@pytest.mark.parametrize("vendor", VENDORS)
def test_tool_calls_round_trip(
    vendor: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("Let me look.", tool_calls=(CALL,)))
    request = ChatRequest(messages=[Message.user("Weather in Oslo?")], tools=[WEATHER])

    events = events_of(make_provider(vendor), request)

    assert [e for e in events if isinstance(e, ToolCallEvent)] == [ToolCallEvent(call=CALL)]
    assert isinstance(events[-1], Finish)
    assert events[-1].reason is FinishReason.tool_calls
    sent = server.requests[0].body["tools"]
    if vendor == "openai":
        assert sent == [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Current weather for a city",
                    "parameters": WEATHER.parameters,
                },
            }
        ]
    else:
        assert sent == [
            {
                "name": "weather",
                "description": "Current weather for a city",
                "input_schema": WEATHER.parameters,
            }
        ]


BERGEN = {"city": "Bergen"}
CONVERSATION = ChatRequest(
    messages=[
        Message.system("You answer from the sources."),
        Message.system("Cite every claim."),
        Message.user("Weather in Oslo and Bergen?"),
        Message(
            role=Role.assistant,
            tool_calls=[CALL, ToolCall(id="call_2", name="weather", arguments=BERGEN)],
        ),
        Message(role=Role.tool, content="-3 C", tool_call_id="call_1"),
        Message(role=Role.tool, content="4 C, rain", tool_call_id="call_2"),
    ],
    max_tokens=99,
    temperature=0.5,
    top_p=0.9,
    stop=["\n\nSources:"],
    seed=7,
    json_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
)


def test_openai_request_carries_the_conversation(
    server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("{}"))
    events_of(make_provider("openai"), CONVERSATION)

    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    body = sent.body
    assert body["model"] == "m"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (99, 0.5, 0.9)
    assert (body["stop"], body["seed"]) == (["\n\nSources:"], 7)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": CONVERSATION.json_schema, "strict": True},
    }
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    assert body["messages"][3]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city": "Oslo", "units": ["c"]}',
    }
    assert body["messages"][5] == {"role": "tool", "content": "4 C, rain", "tool_call_id": "call_2"}


def test_anthropic_request_carries_the_conversation(
    server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("{}"))
    events_of(make_provider("anthropic"), CONVERSATION)

    (sent,) = server.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == "Bearer sk-ant-test"
    body = sent.body
    assert body["model"] == "m"
    assert body["stream"] is True
    assert body["system"] == "You answer from the sources.\n\nCite every claim."
    assert body["max_tokens"] == 99
    assert body["stop_sequences"] == ["\n\nSources:"]
    assert not {"temperature", "top_p", "seed"} & body.keys()  # the API refuses them
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": CONVERSATION.json_schema}
    }
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo and Bergen?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": CALL.arguments},
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "weather",
                    "input": {"city": "Bergen"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "-3 C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "4 C, rain"},
            ],
        },
    ]


def test_anthropic_refuses_a_tool_result_without_its_call_id(
    make_provider: MakeProvider,
) -> None:
    request = ChatRequest(messages=[Message(role=Role.tool, content="42")])
    with pytest.raises(InvalidInput) as caught:
        events_of(make_provider("anthropic"), request)
    assert caught.value.field == "messages"


OPENAI_CONTEXT = (
    "This model's maximum context length is 4096 tokens. However, your messages resulted in "
    "5000 tokens. Please reduce the length of the messages."
)
ANTHROPIC_CONTEXT = "prompt is too long: 5000 tokens > 4096 maximum"

# status, retryable, words the error must say (besides the provider's own message)
STATUS_CASES = [
    (500, True, ""),
    (503, True, ""),
    (529, True, ""),
    (429, True, ""),
    (401, False, "credentials were refused"),
    (403, False, "credentials were refused"),
    (404, False, "model name or the URL is wrong"),
    (400, False, ""),
    (422, False, ""),
]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize(("status", "retryable", "says"), STATUS_CASES)
def test_http_errors_become_provider_errors(
    vendor: str,
    status: int,
    retryable: bool,
    says: str,
    server: FakeLLMServer,
    make_provider: MakeProvider,
) -> None:
    server.plan(Fail(status, "upstream says no"))
    provider = make_provider(vendor)

    with pytest.raises(ProviderError) as caught:
        events_of(provider)

    error = caught.value
    assert error.provider == provider.endpoint
    assert error.retryable is retryable
    assert error.upstream_status == status
    assert "upstream says no" in error.detail
    assert says in error.detail
    assert provider.endpoint in str(error)
    assert isinstance(error.__cause__, openai.APIError | anthropic.APIError)


@pytest.mark.parametrize(
    ("vendor", "message"), [("openai", OPENAI_CONTEXT), ("anthropic", ANTHROPIC_CONTEXT)]
)
def test_context_overflow_is_invalid_messages(
    vendor: str, message: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Fail(400, message))
    with pytest.raises(InvalidInput) as caught:
        events_of(make_provider(vendor))
    assert caught.value.field == "messages"
    assert message in caught.value.detail


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_timeout_is_retryable(
    vendor: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Hang())
    with pytest.raises(ProviderError, match=r"no answer within 0\.5 s") as caught:
        events_of(make_provider(vendor, timeout_seconds=0.5))
    assert caught.value.retryable
    assert len(server.wait_for_requests(1)) == 1  # it did reach the server


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_connection_dropped_mid_stream_is_retryable(
    vendor: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("aaaabbbbccccdddd", chunks=4, drop_after=2))
    received: list[ChatEvent] = []

    with pytest.raises(ProviderError, match="connection failed") as caught:
        received.extend(make_provider(vendor).stream("m", HELLO))

    assert received == [TextDelta(text="aaaa"), TextDelta(text="bbbb")]
    assert caught.value.retryable


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_error_event_mid_stream_is_retryable(
    vendor: str, server: FakeLLMServer, make_provider: MakeProvider
) -> None:
    server.plan(Reply("one two", chunks=2, fail_after=1))
    with pytest.raises(ProviderError, match="verloaded") as caught:
        events_of(make_provider(vendor))
    assert caught.value.retryable


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_unreachable_server_is_retryable(vendor: str) -> None:
    with FakeLLMServer() as gone:
        url = gone.base_url
    provider: ChatProvider = (
        OpenAICompatibleProvider(f"{url}/v1", None, timeout_seconds=2)
        if vendor == "openai"
        else AnthropicProvider(None, base_url=url, timeout_seconds=2)
    )
    try:
        with pytest.raises(ProviderError, match="connection failed") as caught:
            events_of(provider)
    finally:
        provider.close()
    assert caught.value.retryable


def test_endpoints_name_the_vendor_and_url() -> None:
    providers: list[ChatProvider] = [
        OpenAICompatibleProvider(None, "k", timeout_seconds=1),
        OpenAICompatibleProvider("http://vllm:8000/v1", None, timeout_seconds=1),
        AnthropicProvider("k", timeout_seconds=1),
    ]
    assert [p.endpoint for p in providers] == [
        "openai:https://api.openai.com/v1",
        "openai:http://vllm:8000/v1",
        "anthropic:https://api.anthropic.com",
    ]
    for provider in providers:
        provider.close()


def test_the_fake_server_answers_unstreamed_requests_too(server: FakeLLMServer) -> None:
    server.plan(Reply("Hi", tool_calls=(CALL,)), Reply("Hi", tool_calls=(CALL,)))
    messages: list[Any] = [{"role": "user", "content": "hello"}]
    with openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0) as client:
        completion = client.chat.completions.create(model="m", messages=messages)
    with anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0) as claude:
        message = claude.messages.create(model="m", max_tokens=5, messages=messages)

    assert completion.choices[0].message.content == "Hi"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert server.pending == 0
