"""The agent builder's pure parts: the stage machine, the checks on what the model read, and
the outputs code assembles (every template a valid workflow)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from citeline.agent_builder.interpret import (
    Reader,
    check_change,
    check_field,
    named_tools,
    parse_json,
    schema_for,
)
from citeline.agent_builder.outputs import (
    BUILT_IN_TOOLS,
    CITATION_RULES,
    ToolInfo,
    build_workflow,
    final_prompt,
    suggest_tools,
    tools_config,
)
from citeline.agent_builder.stages import (
    AGENT_TYPES,
    UNKNOWN,
    Stage,
    empty_fields,
    missing,
    next_stage,
    question,
)
from citeline.agents import to_mermaid, validate_workflow
from citeline.errors import InvalidInput
from citeline.llm import ChatRequest, embedder_for
from citeline.settings import Settings

TOOLS = [t.name for t in BUILT_IN_TOOLS]


def test_the_stage_machine_asks_for_the_first_unknown_field_then_reviews() -> None:
    fields = empty_fields()
    assert next_stage(fields) is Stage.agent_type
    fields["agent_type"] = "research"
    fields["tone"] = "formal"
    assert next_stage(fields) is Stage.goals  # goals come before tone, tone is kept
    fields["goals"] = ["track papers"]
    assert next_stage(fields) is Stage.tools
    fields["tools"] = []  # confirmed: no tools
    assert next_stage(fields) is Stage.workflow
    fields["human_review"] = "no"
    assert next_stage(fields) is Stage.review
    assert missing(fields) == []
    assert "I still need its tone" in question(Stage.tone, fields, ["tone"])


def test_invented_values_are_refused_and_unstated_fields_stay_unknown() -> None:
    # The model picked a tone and a type the person never gave.
    message = "I need something that answers questions about our HR handbook"
    assert check_field("tone", "friendly", message) == UNKNOWN
    assert check_field("agent_type", "writer", message) == "question_answering"
    assert check_field("agent_type", "unknown", "hello there") == UNKNOWN
    # A value outside the enum (llama.cpp may ignore the schema) is not taken either.
    assert check_field("tone", "sarcastic", "be formal please") == "formal"
    assert check_field("tone", ["formal"], "no idea") == UNKNOWN


def test_goals_must_come_from_the_message() -> None:
    message = "It should summarize weekly incident reports and flag outages"
    goals = check_field(
        "goals", ["Summarize weekly incident reports", "Sell insurance", 7, "unknown"], message
    )
    assert goals == ["Summarize weekly incident reports"]
    assert check_field("goals", "not a list", message) == UNKNOWN
    # A "goal" that only restates the kind of agent was not given.
    assert check_field("goals", ["customer support"], "I need a customer support agent") == UNKNOWN
    assert check_field("goals", ["summarizer"], "I need a summarizer.") == UNKNOWN
    # Asked only for goals, a plain answer is the goal.
    assert check_field("goals", [], "answer leave questions", plain=True) == [
        "answer leave questions"
    ]


def test_going_back_needs_a_word_of_changing_and_the_field() -> None:
    assert check_change("tone", "change the tone to formal", "goals") == "tone"
    assert check_change("none", "actually make it a research agent", "tone") == "agent_type"
    # Naming the field without asking to change it is an answer, not a change.
    assert check_change("tone", "formal tone", "goals") is None
    # The model's change is not taken when the message does not name that field.
    assert check_change("goals", "switch to formal", "review") == "tone"
    assert check_change("goals", "please change it", "tone") is None


def test_the_model_output_is_parsed_defensively() -> None:
    assert parse_json('```json\n{"tone": "formal"}\n```') == {"tone": "formal"}
    assert parse_json("[1, 2]") == {}
    assert parse_json("not json") == {}
    schema = schema_for(("tone", "change"))
    assert schema["properties"]["tone"]["enum"][-1] == UNKNOWN
    assert schema["properties"]["change"]["enum"][0] == "none"
    assert schema["required"] == ["tone", "change"]


def test_a_reader_takes_a_change_and_rereads_only_when_the_words_do_not_say() -> None:
    asked: list[ChatRequest] = []
    replies = iter([json.dumps({"goals": ["unknown"], "change": "tone"})])

    def ask(request: ChatRequest) -> str:
        asked.append(request)
        return next(replies)

    reading = Reader(ask, TOOLS).read(Stage.goals, "change the tone to formal")
    assert reading.change == "tone" and reading.values == {"tone": "formal"}
    assert len(asked) == 1  # "formal" named the value: no second question
    assert asked[0].json_schema is not None and asked[0].temperature == 0.0


def test_named_tools_are_matched_against_the_ones_that_exist() -> None:
    assert named_tools("use search knowledge base please", TOOLS) == ["search_knowledge_base"]
    assert named_tools("use the web browser", TOOLS) == []


def _fields(agent_type: str, tools: list[str], review: str) -> dict[str, Any]:
    return {
        "agent_type": agent_type,
        "goals": ["answer leave questions", "cite the handbook"],
        "tone": "formal",
        "tools": tools,
        "human_review": review,
    }


@pytest.mark.parametrize(
    ("agent_type", "tools", "review"),
    list(itertools.product(AGENT_TYPES, [[], TOOLS], ["yes", "no"])),
)
def test_every_template_is_a_valid_workflow(agent_type: str, tools: list[str], review: str) -> None:
    workflow = build_workflow(_fields(agent_type, tools, review), BUILT_IN_TOOLS)
    assert workflow is not None
    checked = validate_workflow(workflow, tools=TOOLS)
    assert checked.tools == tools
    types = [n["type"] for n in workflow["nodes"]]
    assert ("human_review" in types) == (review == "yes")
    assert to_mermaid(workflow).startswith("flowchart TD")


def test_a_workflow_naming_a_tool_that_does_not_exist_is_refused_with_the_reason() -> None:
    workflow = build_workflow(_fields("research", ["web_browser"], "no"), BUILT_IN_TOOLS)
    assert workflow is not None
    with pytest.raises(InvalidInput, match="web_browser"):
        validate_workflow(workflow, tools=TOOLS)


def test_the_prompt_states_every_part_and_tools_config_has_argument_schemas() -> None:
    extra = ToolInfo("time_now", "The current time in a time zone.", {"type": "object"}, "mcp")
    fields = _fields("customer_support", ["search_knowledge_base", "time_now"], "yes")
    prompt = final_prompt(fields, [*BUILT_IN_TOOLS, extra])
    for part in ("Role:", "answer leave questions", "Tone: Write formally", "time_now",
                 CITATION_RULES, "A person reviews"):  # fmt: skip
        assert part in prompt
    config = tools_config(["search_knowledge_base"], BUILT_IN_TOOLS)
    assert config[0]["parameters"]["required"] == ["query"]
    assert final_prompt(empty_fields(), []).count("(not given yet)") == 2


def test_tools_are_suggested_by_embedding_similarity_to_the_goals() -> None:
    embedder = embedder_for(Settings(embedding_provider="local"))
    time_tool = ToolInfo("get_current_time", "Get the current time in a specific timezone")
    tools = [*BUILT_IN_TOOLS, time_tool]
    assert suggest_tools(embedder, ["schedule meetings across time zones"], tools)[0] == (
        "get_current_time"
    )
    assert suggest_tools(embedder, ["track new papers on retrieval"], tools) == [
        "search_knowledge_base"
    ]
    assert suggest_tools(embedder, [], tools) == []
