"""The assistant's tool checks: which tools a run offers, and what the model is told when a
call names no such tool or its arguments do not match the schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citeline.assistant import tools as toolkit
from citeline.llm import ToolSpec


@dataclass(frozen=True)
class Described:
    name: str
    policy: str

    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            parameters={"type": "object", "properties": {"x": {"type": "integer"}}},
        )


class Box:
    def tools(self) -> list[Described]:
        return [Described("lookup", "allow"), Described("rm", "destructive?"),
                Described("cite", "ask")]  # fmt: skip

    def call(self, name: str, arguments: dict[str, Any], *, run_id: str | None = None) -> Any:
        raise AssertionError("not called here")


def test_the_tools_a_run_offers() -> None:
    offered = toolkit.available(["harbour"], Box(), None)
    assert list(offered) == ["search_knowledge_base", "cite", "lookup", "rm"]
    assert offered["cite"].built_in  # an external tool cannot take a built-in name
    assert offered["rm"].policy == "ask"  # anything but "allow" asks first (fails closed)
    assert "knowledge_base" not in offered["search_knowledge_base"].spec.parameters["properties"]
    two = toolkit.available(["a", "b"], None, None)
    assert two["search_knowledge_base"].spec.parameters["properties"]["knowledge_base"]["enum"] == [
        "a",
        "b",
    ]
    assert list(toolkit.available([], Box(), ["lookup", "nothing"])) == ["lookup"]
    assert list(toolkit.available([], None, None)) == ["cite"]


def test_what_the_model_is_told_about_a_bad_call() -> None:
    offered = toolkit.available(["harbour"], Box(), None)
    unknown = toolkit.problem(offered, "weather", {})
    assert unknown is not None and "no tool named 'weather'" in unknown and "lookup" in unknown
    missing = toolkit.problem(offered, "search_knowledge_base", {})
    assert missing is not None and "'query' is a required property" in missing
    extra = toolkit.problem(offered, "search_knowledge_base", {"query": "x", "k": 3})
    assert extra is not None and "do not match its schema" in extra
    wrong = toolkit.problem(offered, "lookup", {"x": "three"})
    assert wrong is not None and "x: 'three' is not of type 'integer'" in wrong
    assert toolkit.problem(offered, "lookup", {"x": 3}) is None
    assert toolkit.problem(offered, "cite", {"source": "1", "quote": "built in 1847"}) is None
