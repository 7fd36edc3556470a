"""What a builder session produces, assembled by code from the collected fields: the workflow
(from a template per agent type), the tools config (only tools that exist, with their argument
schemas) and the system prompt (every part stated). Nothing here comes from a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from citeline.agent_builder.stages import UNKNOWN, known
from citeline.llm import Embedder


@dataclass(frozen=True)
class ToolInfo:
    """A tool an agent of a workspace may call: its name, what it does and its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    source: str = "built-in"


SEARCH_KNOWLEDGE_BASE = ToolInfo(
    name="search_knowledge_base",
    description=(
        "Search the workspace's knowledge bases for passages about a question or topic, and "
        "return them with their document, page and offsets so answers can cite them."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "what to look for"},
            "knowledge_base": {
                "type": "string",
                "description": "a knowledge base name or id; all of the workspace's if omitted",
            },
            "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 6},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
BUILT_IN_TOOLS = (SEARCH_KNOWLEDGE_BASE,)

# Given a workspace id, the tools it offers beyond the built-in ones (MCP tools once
# registered). The composition root fills this in; the builder never names a source itself.
ToolSource = Callable[[str], Sequence[ToolInfo]]

SUGGEST_MIN_SIMILARITY = 0.1  # all-MiniLM cosine; unrelated texts score about 0 to 0.08


def suggest_tools(
    embedder: Embedder, goals: Sequence[str], tools: Sequence[ToolInfo], limit: int = 5
) -> list[str]:
    """Tools whose description is closest to the goals (cosine similarity of embeddings), the
    closest first; a checklist for the person to confirm, never a choice made for them."""
    if not goals or not tools:
        return []
    vectors = embedder.embed([" ".join(goals), *(f"{t.name}: {t.description}" for t in tools)])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-9)
    scores = vectors[1:] @ vectors[0]
    ranked = sorted(zip(scores.tolist(), tools, strict=True), key=lambda pair: -pair[0])
    return [t.name for score, t in ranked if score >= SUGGEST_MIN_SIMILARITY][:limit]


def tools_config(names: Sequence[str], tools: Sequence[ToolInfo]) -> list[dict[str, Any]]:
    by_name = {t.name: t for t in tools}
    return [
        {
            "name": name,
            "description": by_name[name].description,
            "source": by_name[name].source,
            "parameters": by_name[name].parameters,
        }
        for name in names
    ]


TONE_RULES = {
    "formal": "Write formally and politely, in complete sentences, without slang.",
    "friendly": "Write warmly and plainly, as a helpful colleague would.",
    "concise": "Be brief: answer in as few sentences as the question allows.",
    "technical": "Be precise and technical; name exact versions, commands and settings.",
    "neutral": "Write in a plain, neutral, objective voice.",
}
ROLES = {
    "question_answering": "You answer questions from the knowledge bases you are given.",
    "customer_support": "You are a customer support agent who helps customers solve problems.",
    "research": "You research a topic across the knowledge bases and report what they say.",
    "summarizer": "You summarize documents and passages faithfully.",
    "writer": "You write drafts grounded in the passages you are given.",
}
CITATION_RULES = (
    "Citation rules: every factual sentence cites the passage it comes from, as [n] with the "
    "passage's number. Use only the passages you are given; if they do not answer, say so and "
    "do not guess. Never invent a source, a quotation or a page."
)


def final_prompt(fields: dict[str, Any], tools: Sequence[ToolInfo]) -> str:
    """The agent's system prompt: role, goals, tone, tools and citation rules, each present."""
    agent_type = fields.get("agent_type", UNKNOWN)
    goals = fields.get("goals") if known(fields, "goals") else []
    tone = fields.get("tone", UNKNOWN)
    chosen = fields.get("tools") if known(fields, "tools") else []
    by_name = {t.name: t for t in tools}
    lines = [f"Role: {ROLES.get(agent_type, 'You are an assistant.')}"]
    lines.append("Goals:")
    lines.extend(f"- {goal}" for goal in (goals or ["(not given yet)"]))
    lines.append(f"Tone: {TONE_RULES.get(tone, '(not given yet)')}")
    if chosen:
        lines.append("Tools you may call:")
        lines.extend(
            f"- {name}: {by_name[name].description if name in by_name else '(unavailable)'}"
            for name in chosen
        )
    else:
        lines.append("Tools: none; work only from the passages you are given.")
    if fields.get("human_review") == "yes":
        lines.append("A person reviews each output before it is sent.")
    lines.append(CITATION_RULES)
    return "\n".join(lines)


def _tool_arguments(tool: ToolInfo) -> dict[str, Any]:
    """Arguments for a tool node: the task input in the tool's first string argument."""
    properties = tool.parameters.get("properties") or {}
    required = tool.parameters.get("required") or list(properties)
    for name in [*required, *properties]:
        if (properties.get(name) or {}).get("type") == "string":
            return {name: "{{input}}"}
    return {}


class Chain:
    """Builds a workflow graph node by node, each joined to the one before it."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
        self.edges: list[dict[str, Any]] = []
        self.last = "start"

    def add(self, node: dict[str, Any], *, when: str | None = None) -> None:
        edge: dict[str, Any] = {"from": self.last, "to": node["id"]}
        if when is not None:
            edge["when"] = when
        self.nodes.append(node)
        self.edges.append(edge)
        self.last = node["id"]

    def end(self) -> dict[str, Any]:
        self.add({"id": "end", "type": "end"})
        return {"version": 1, "nodes": self.nodes, "edges": self.edges}


def build_workflow(fields: dict[str, Any], tools: Sequence[ToolInfo]) -> dict[str, Any] | None:
    """The workflow for the collected fields from its agent type's template; None until the
    type is known. Tool nodes name the confirmed tools as they are."""
    agent_type = fields.get("agent_type", UNKNOWN)
    if agent_type == UNKNOWN:
        return None
    goals = fields.get("goals") if known(fields, "goals") else []
    tone = TONE_RULES.get(fields.get("tone", UNKNOWN), "")
    aims = "; ".join(goals) if goals else "help the person"
    by_name = {t.name: t for t in tools}
    chain = Chain()
    chosen: list[str] = fields["tools"] if known(fields, "tools") else []
    for index, name in enumerate(chosen, 1):
        arguments = _tool_arguments(by_name[name]) if name in by_name else {}
        chain.add({"id": f"tool_{index}", "type": "tool", "tool": name, "arguments": arguments})
    top_k = {"research": 10, "summarizer": 8}.get(agent_type, 6)
    chain.add({"id": "find", "type": "retrieve", "query": "{{input}}", "top_k": top_k})
    if agent_type == "research":
        chain.add({"id": "outline", "type": "llm", "cite": False,
                   "prompt": "List the questions to research about {{input}}."})  # fmt: skip
        instruction = "Report what the passages say about {{input}}, question by question"
    elif agent_type == "summarizer":
        instruction = "Summarize the passages about {{input}}"
    elif agent_type == "writer":
        instruction = "Write the text asked for in {{input}} from the passages"
    elif agent_type == "customer_support":
        instruction = "Help the customer with {{input}} using the passages"
    else:
        instruction = "Answer {{input}} from the passages"
    guarded = agent_type != "research"
    if guarded:
        chain.add({"id": "check", "type": "condition", "check": "has_passages", "source": "find"})
    chain.add(
        {
            "id": "draft",
            "type": "llm",
            "prompt": f"{instruction}. Goals: {aims}. {tone}".strip(),
            "cite": True,
        },
        when="true" if guarded else None,
    )
    if agent_type == "writer":
        revise = f"Revise {{{{draft}}}} keeping every citation. {tone}".strip()
        chain.add({"id": "polish", "type": "llm", "cite": True, "prompt": revise})
    if fields.get("human_review") == "yes":
        check = "Check the output and its citations before it is sent."
        chain.add({"id": "review", "type": "human_review", "instructions": check})
    workflow = chain.end()
    if guarded:
        workflow["nodes"].insert(-1, {
            "id": "decline", "type": "llm", "cite": False,
            "prompt": "Say that the knowledge bases hold nothing about {{input}}; do not guess.",
        })  # fmt: skip
        workflow["edges"] += [
            {"from": "check", "to": "decline", "when": "false"},
            {"from": "decline", "to": "end"},
        ]
    return workflow
