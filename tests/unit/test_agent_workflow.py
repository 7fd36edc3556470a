"""Agent workflows: the schema, the graph checks, and the Mermaid rendering."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from citeline.agents import WORKFLOW_SCHEMA, to_mermaid, validate_workflow
from citeline.agents.workflow import render
from citeline.errors import InvalidInput

TOOLS = ("search_knowledge_base",)

EXAMPLE: dict[str, Any] = {
    "version": 1,
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "find", "type": "retrieve", "query": "{{input}}", "top_k": 6},
        {
            "id": "lookup",
            "type": "tool",
            "tool": "search_knowledge_base",
            "arguments": {"query": "{{input}}"},
        },
        {"id": "check", "type": "condition", "check": "has_passages", "source": "find"},
        {
            "id": "draft",
            "type": "llm",
            "prompt": "Answer {{input}} from the passages.",
            "cite": True,
        },
        {
            "id": "review",
            "type": "human_review",
            "instructions": "Check the draft before it is sent.",
        },
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "find"},
        {"from": "find", "to": "lookup"},
        {"from": "lookup", "to": "check"},
        {"from": "check", "to": "draft", "when": "true"},
        {"from": "check", "to": "end", "when": "false"},
        {"from": "draft", "to": "review"},
        {"from": "review", "to": "end"},
    ],
}


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def refused(workflow: dict[str, Any], tools: tuple[str, ...] = TOOLS) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_workflow(workflow, tools=tools)
    return caught.value.detail


def test_the_example_is_valid_and_ordered_from_start() -> None:
    flow = validate_workflow(example(), tools=TOOLS)
    assert flow.start == "start"
    assert flow.order[0] == "start"
    assert flow.order.index("find") < flow.order.index("check") < flow.order.index("draft")
    assert flow.next_node("check", True) == "draft"
    assert flow.next_node("check", False) == "end"
    assert flow.next_node("find") == "lookup"
    assert flow.next_node("end") is None
    assert flow.tools == ["search_knowledge_base"]
    jsonschema.Draft202012Validator.check_schema(WORKFLOW_SCHEMA)
    jsonschema.validate(EXAMPLE, WORKFLOW_SCHEMA)


def test_a_cycle_is_refused_and_named() -> None:
    flow = example()
    flow["edges"][5] = {"from": "draft", "to": "find"}  # draft -> find -> lookup -> check -> draft
    detail = refused(flow)
    assert "cycle" in detail
    assert "find" in detail and "draft" in detail


def test_no_end_node_is_refused() -> None:
    flow = example()
    flow["nodes"] = [n for n in flow["nodes"] if n["id"] != "end"]
    flow["edges"] = [e for e in flow["edges"] if e["to"] != "end"]
    assert "no end node" in refused(flow)


def test_a_node_with_no_way_out_is_refused() -> None:
    flow = example()
    flow["edges"] = [e for e in flow["edges"] if e["from"] != "review"]
    detail = refused(flow)
    assert "review" in detail and "no end reachable" in detail


def test_an_unreachable_node_is_refused() -> None:
    flow = example()
    flow["nodes"].append({"id": "orphan", "type": "llm", "prompt": "hello"})
    flow["edges"].append({"from": "orphan", "to": "end"})
    detail = refused(flow)
    assert "unreachable" in detail and "orphan" in detail


def test_a_dangling_edge_is_refused() -> None:
    flow = example()
    flow["edges"][0] = {"from": "start", "to": "nowhere"}
    detail = refused(flow)
    assert "unknown node" in detail and "nowhere" in detail


def test_two_starts_are_refused() -> None:
    flow = example()
    flow["nodes"].append({"id": "start2", "type": "start"})
    flow["edges"].append({"from": "start2", "to": "find"})
    detail = refused(flow)
    assert "exactly one start" in detail and "start2" in detail


def test_an_unknown_tool_is_refused_with_the_reason() -> None:
    flow = example()
    flow["nodes"][2]["tool"] = "send_email"
    detail = refused(flow)
    assert "send_email" in detail
    assert "does not exist" in detail
    assert "search_knowledge_base" in detail  # what is available
    # ...and the same tool is accepted where it exists.
    validate_workflow(flow, tools=(*TOOLS, "send_email"))


def test_condition_edges() -> None:
    one_branch = example()
    one_branch["edges"] = [e for e in one_branch["edges"] if e.get("when") != "false"]
    assert "exactly one 'true' and one 'false'" in refused(one_branch)

    unlabelled = example()
    unlabelled["edges"][3] = {"from": "check", "to": "draft"}
    assert "exactly one 'true' and one 'false'" in refused(unlabelled)

    when_elsewhere = example()
    when_elsewhere["edges"][0]["when"] = "true"
    assert "not a condition node" in refused(when_elsewhere)

    wrong_source = example()
    wrong_source["nodes"][3]["source"] = "lookup"
    assert "needs a retrieve node" in refused(wrong_source)

    contains = example()
    contains["nodes"][3] = {
        "id": "check",
        "type": "condition",
        "check": "contains",
        "source": "lookup",
    }
    assert "needs a 'value'" in refused(contains)
    contains["nodes"][3]["value"] = "refund"
    validate_workflow(contains, tools=TOOLS)


def test_schema_errors_name_the_node_and_field() -> None:
    bad_type = example()
    bad_type["nodes"][1]["type"] = "teleport"
    assert "unknown node type 'teleport'" in refused(bad_type)

    missing_prompt = example()
    del missing_prompt["nodes"][4]["prompt"]
    detail = refused(missing_prompt)
    assert "nodes.4" in detail and "prompt" in detail

    bad_id = example()
    bad_id["nodes"][0]["id"] = "Start Here"
    assert "nodes.0.id" in refused(bad_id)

    duplicate = example()
    duplicate["nodes"][4]["id"] = "find"
    assert "duplicate node id 'find'" in refused(duplicate)

    assert "version" in refused({"nodes": [], "edges": []})
    with pytest.raises(InvalidInput):
        validate_workflow([], tools=TOOLS)  # type: ignore[arg-type]


def test_placeholders_must_name_earlier_nodes() -> None:
    flow = example()
    flow["nodes"][4]["prompt"] = "Answer {{input}} with {{find}} and {{lookup}}."
    validate_workflow(flow, tools=TOOLS)
    flow["nodes"][4]["prompt"] = "Answer with {{review}}."
    assert "does not run before it" in refused(flow)
    flow["nodes"][4]["prompt"] = "Answer with {{ghost}}."
    assert "unknown node" in refused(flow)
    assert render("a {{input}} b {{x}}", {"input": "Q"}) == "a Q b {{x}}"


def test_mermaid_draws_every_node_and_edge() -> None:
    text = to_mermaid(EXAMPLE)
    assert text.startswith("flowchart TD\n")
    for node in EXAMPLE["nodes"]:
        assert f"    {node['id']}" in text
    assert "check -->|true| draft" in text
    assert "check -->|false| end" in text
    assert "find --> lookup" in text
    assert 'lookup["lookup: tool search_knowledge_base"]' in text
