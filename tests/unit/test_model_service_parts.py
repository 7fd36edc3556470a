"""The model service's pure parts: model assembly, routing, version defaults, the OpenAI
request translation and the constrained tool reply."""

from __future__ import annotations

import hashlib
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from citeline.errors import ConfigurationError, InvalidInput
from citeline.llm.bundled import BundledModel, assemble
from citeline.llm.messages import (
    ChatRequest,
    Finish,
    FinishReason,
    Message,
    Role,
    TextDelta,
    ToolCallEvent,
    Usage,
)
from citeline.llm.openai_api import ChatCompletionIn, to_chat_request
from citeline.llm.providers.local_tools import AnswerStream, read_reply
from citeline.llm.registry import VersionSpec
from citeline.llm.routing import choose, sticky_point
from citeline.llm.service import apply_version


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[tuple[str, ...], bytes]]:
    """Three importable part packages with get_part_path(), like the model packages."""
    prefix = f"fakepart_{uuid.uuid4().hex[:8]}_"
    data = b""
    names = []
    for i in range(1, 4):
        package = tmp_path / "site" / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        chunk = bytes([i]) * (5_000_000 + i)
        data += chunk
        (package / "data" / "part.bin").write_bytes(chunk)
        (package / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            "    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )
        names.append(f"{prefix}{i}")
    sys.path.insert(0, str(tmp_path / "site"))
    importlib.invalidate_caches()
    yield tuple(names), data
    sys.path.remove(str(tmp_path / "site"))


def test_a_split_model_is_assembled_once_and_checked(
    tmp_path: Path, parts: tuple[tuple[str, ...], bytes]
) -> None:
    modules, data = parts
    model = BundledModel("fake", "Fake", "fake.gguf", hashlib.sha256(data).hexdigest(), modules)
    seen: list[tuple[int, int]] = []
    path = assemble(model, tmp_path / "models", lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == data
    assert seen[-1] == (len(data), len(data)) and len(seen) > 1
    stamp = path.stat().st_mtime_ns
    assert assemble(model, tmp_path / "models") == path
    assert path.stat().st_mtime_ns == stamp  # the marker spared a second copy


def test_an_assembled_model_is_used_without_its_part_packages(
    tmp_path: Path, parts: tuple[tuple[str, ...], bytes]
) -> None:
    """A container image keeps the assembled GGUF and leaves the part packages out."""
    modules, data = parts
    sha = hashlib.sha256(data).hexdigest()
    path = assemble(BundledModel("fake", "Fake", "fake.gguf", sha, modules), tmp_path / "models")
    without_parts = BundledModel("fake", "Fake", "fake.gguf", sha, ("no_such_part_module",))
    assert assemble(without_parts, tmp_path / "models") == path
    with path.open("r+b") as handle:
        handle.truncate(len(data) - 1)
    with pytest.raises(ConfigurationError, match="no-such-part-module is not installed"):
        assemble(without_parts, tmp_path / "models")
    assert assemble(BundledModel("fake", "Fake", "fake.gguf", sha, modules), tmp_path / "models")
    assert path.read_bytes() == data


def test_a_wrong_checksum_leaves_no_model_behind(
    tmp_path: Path, parts: tuple[tuple[str, ...], bytes]
) -> None:
    modules, _ = parts
    model = BundledModel("fake", "Fake", "fake.gguf", "0" * 64, modules)
    with pytest.raises(ConfigurationError, match="sha256"):
        assemble(model, tmp_path / "models")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".fake.lock"]
    missing = BundledModel("gone", "Gone", "gone.gguf", "0" * 64, ("no_such_part_module",))
    with pytest.raises(ConfigurationError, match="no-such-part-module is not installed"):
        assemble(missing, tmp_path / "models")


def test_choose_splits_by_weight_and_is_stable_per_key() -> None:
    routes = [("a", 1.0), ("b", 3.0)]
    assert all(choose("alias", routes, "k1") == choose("alias", routes, "k1") for _ in range(5))
    picks = [choose("alias", routes, f"user{i}") for i in range(4000)]
    assert 0.72 < picks.count("b") / 4000 < 0.78
    assert choose("alias", [("a", 0.0), ("b", 1.0)], "anyone") == "b"
    assert 0 <= sticky_point("x", "y") < 1
    with pytest.raises(ValueError, match="no route"):
        choose("alias", [("a", 0.0)], None)


def version(**changes: object) -> VersionSpec:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "name": "m",
        "version": 1,
        "provider": "local",
        "model": "default",
        "base_url": None,
        "credential": None,
        "parameters": {"temperature": 0.0, "max_tokens": 64},
        "prompt_template": None,
    }
    base.update(changes)
    return VersionSpec(**base)  # type: ignore[arg-type]


def test_version_defaults_fill_only_what_the_caller_left_unset() -> None:
    unset = ChatRequest(messages=[Message.user("hi")])
    applied = apply_version(version(), unset)
    assert (applied.temperature, applied.max_tokens) == (0.0, 64)
    explicit = ChatRequest(messages=[Message.user("hi")], max_tokens=5)
    assert apply_version(version(), explicit).max_tokens == 5
    templated = apply_version(
        version(prompt_template="Cite sources. {system} Be brief."),
        ChatRequest(messages=[Message.system("You are Ada."), Message.user("hi")]),
    )
    assert [m.role for m in templated.messages] == [Role.system, Role.user]
    assert templated.messages[0].content == "Cite sources. You are Ada. Be brief."


OBJECT = {"type": "object"}
FUNCTION = {"name": "f", "arguments": '{"x": 1}'}


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def test_openai_requests_translate_and_bad_ones_name_the_field() -> None:
    body = ChatCompletionIn.model_validate(
        {
            "model": "default",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "stop": "END",
            "max_completion_tokens": 9,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"schema": {"type": "object"}},
            },
            "frequency_penalty": 0.5,
        }
    )
    request = to_chat_request(body)
    assert [m.role for m in request.messages] == [Role.system, Role.user, Role.assistant, Role.tool]
    assert request.messages[1].content == "Hi there"
    assert request.messages[2].tool_calls[0].arguments == {"x": 1}
    assert (request.stop, request.max_tokens, request.json_schema) == (
        ["END"],
        9,
        {"type": "object"},
    )
    assert "temperature" not in request.model_fields_set
    image = ChatCompletionIn.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
    )
    with pytest.raises(InvalidInput) as caught:
        to_chat_request(image)
    assert caught.value.field == "messages.0.content"
    with pytest.raises(InvalidInput, match="n=1"):
        to_chat_request(
            ChatCompletionIn.model_validate(
                {"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}
            )
        )


def test_a_constrained_tool_reply_becomes_a_call_or_text() -> None:
    finish = Finish(reason=FinishReason.stop, usage=Usage(input_tokens=3, output_tokens=4))
    call = read_reply('{"tool": "get_weather", "arguments": {"city": "Oslo"}}', finish)
    assert isinstance(call[0], ToolCallEvent) and call[0].call.arguments == {"city": "Oslo"}
    assert isinstance(call[1], Finish) and call[1].reason is FinishReason.tool_calls
    answer = read_reply('{"answer": "Hello"}', finish)
    assert answer == [TextDelta(text="Hello"), finish]
    cut = read_reply('{"answer": "Hel', finish)
    assert cut == [TextDelta(text='{"answer": "Hel'), finish]


def test_a_constrained_answer_streams_as_it_is_generated() -> None:
    pieces = ['{"ans', 'wer": "He', "llo \\", '"world\\', "u00e9\\n", 'x"}']
    reply = AnswerStream()
    seen = [reply.feed(piece) for piece in pieces]
    assert seen == ["", "He", "llo ", '"world', "é\n", "x"]  # escapes decoded across pieces
    assert reply.answering and reply.closed
    call = AnswerStream()
    assert call.feed('{"tool": "get_weather", "arguments": {"city": "Oslo"}}') == ""
    assert not call.answering  # a tool call is read whole, at the end
