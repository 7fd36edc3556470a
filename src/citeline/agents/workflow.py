"""Agent workflows: the published JSON Schema, the graph checks, and a Mermaid rendering.

A workflow is a directed acyclic graph of typed nodes, walked from its one `start` node to an
`end` node. The schema checks the shape of each node; `validate_workflow` then checks the graph
(ids, edges, reachability, cycles) and that every tool node names a tool that exists.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from citeline.errors import InvalidInput

NODE_TYPES = ("start", "end", "llm", "tool", "retrieve", "condition", "human_review")
CONDITION_CHECKS = ("has_passages", "contains", "tool_ok")
BUILTIN_TOOLS = ("search_knowledge_base",)
NODE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]{0,39})\s*\}\}")

_ID = {"type": "string", "pattern": NODE_ID_PATTERN}


def _node(type_: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"id": _ID, "type": {"const": type_}, "label": {"type": "string"}}
        | properties,
        "required": ["id", "type", *required],
        "additionalProperties": False,
    }


WORKFLOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://citeline.dev/schemas/agent-workflow-1.json",
    "title": "Citeline agent workflow",
    "type": "object",
    "properties": {
        "version": {"const": 1},
        "nodes": {
            "type": "array",
            "minItems": 2,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {"type": {"enum": list(NODE_TYPES)}},
                "oneOf": [{"$ref": f"#/$defs/{t}"} for t in NODE_TYPES],
            },
        },
        "edges": {
            "type": "array",
            "maxItems": 400,
            "items": {
                "type": "object",
                "properties": {
                    "from": _ID,
                    "to": _ID,
                    "when": {"enum": ["true", "false"]},
                },
                "required": ["from", "to"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["version", "nodes", "edges"],
    "additionalProperties": False,
    "$defs": {
        "start": _node("start", {}, []),
        "end": _node("end", {}, []),
        "llm": _node(
            "llm",
            {
                "prompt": {"type": "string", "minLength": 1, "maxLength": 20000},
                "cite": {"type": "boolean"},
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": 8192},
            },
            ["prompt"],
        ),
        "tool": _node(
            "tool",
            {
                "tool": {"type": "string", "minLength": 1, "maxLength": 200},
                "arguments": {"type": "object"},
            },
            ["tool"],
        ),
        "retrieve": _node(
            "retrieve",
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 4000},
                "top_k": {"type": "integer", "minimum": 1, "maximum": 50},
                "knowledge_bases": {"type": "array", "items": {"type": "string"}},
            },
            ["query"],
        ),
        "condition": _node(
            "condition",
            {
                "check": {"enum": list(CONDITION_CHECKS)},
                "source": _ID,
                "value": {"type": "string", "maxLength": 2000},
            },
            ["check", "source"],
        ),
        "human_review": _node(
            "human_review", {"instructions": {"type": "string", "maxLength": 4000}}, []
        ),
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(WORKFLOW_SCHEMA)
_NODE_VALIDATORS = {
    t: jsonschema.Draft202012Validator(WORKFLOW_SCHEMA["$defs"][t]) for t in NODE_TYPES
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    when: str | None = None


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: its nodes by id, edges, and a topological order from start."""

    nodes: dict[str, dict[str, Any]]
    edges: tuple[Edge, ...]
    start: str
    order: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False)

    def next_node(self, node_id: str, outcome: bool | None = None) -> str | None:
        """The node after `node_id`; for a condition, the branch matching `outcome`."""
        for edge in self.edges:
            if edge.source != node_id:
                continue
            if edge.when is None or edge.when == ("true" if outcome else "false"):
                return edge.target
        return None

    @property
    def tools(self) -> list[str]:
        return sorted({n["tool"] for n in self.nodes.values() if n["type"] == "tool"})


def validate_workflow(workflow: Mapping[str, Any], *, tools: Collection[str]) -> Workflow:
    """Check `workflow` against the schema and the graph rules; raise InvalidInput naming the
    first problem found."""
    if not isinstance(workflow, Mapping):
        raise InvalidInput("the workflow must be a JSON object", field="workflow")
    _check_schema(workflow)
    nodes: dict[str, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        if node["id"] in nodes:
            raise InvalidInput(f"duplicate node id {node['id']!r}", field="workflow.nodes")
        nodes[node["id"]] = dict(node)
    edges = tuple(Edge(e["from"], e["to"], e.get("when")) for e in workflow["edges"])
    outgoing: dict[str, list[Edge]] = {n: [] for n in nodes}
    incoming: dict[str, int] = dict.fromkeys(nodes, 0)
    for edge in edges:
        for end in (edge.source, edge.target):
            if end not in nodes:
                raise InvalidInput(
                    f"edge {edge.source} -> {edge.target} names an unknown node {end!r}",
                    field="workflow.edges",
                )
        if edge.when is not None and nodes[edge.source]["type"] != "condition":
            raise InvalidInput(
                f"edge {edge.source} -> {edge.target} has 'when' but {edge.source!r} "
                "is not a condition node",
                field="workflow.edges",
            )
        outgoing[edge.source].append(edge)
        incoming[edge.target] += 1

    starts = [n for n, node in nodes.items() if node["type"] == "start"]
    if len(starts) != 1:
        raise InvalidInput(
            f"a workflow needs exactly one start node, found {len(starts)}"
            + (f" ({', '.join(starts)})" if starts else ""),
            field="workflow.nodes",
        )
    start = starts[0]
    if incoming[start]:
        raise InvalidInput(f"the start node {start!r} has incoming edges", field="workflow.edges")
    if not any(node["type"] == "end" for node in nodes.values()):
        raise InvalidInput("the workflow has no end node", field="workflow.nodes")

    for node_id, node in nodes.items():
        _check_outgoing(node_id, node["type"], outgoing[node_id])

    order = _topological_order(start, outgoing)
    unreachable = [n for n in nodes if n not in order]
    if unreachable:
        raise InvalidInput(
            f"node(s) unreachable from start: {', '.join(unreachable)}", field="workflow.nodes"
        )

    known_tools = set(tools)
    for node_id, node in nodes.items():
        if node["type"] == "tool" and node["tool"] not in known_tools:
            available = ", ".join(sorted(known_tools)) or "none"
            raise InvalidInput(
                f"node {node_id!r} names tool {node['tool']!r}, which does not exist in this "
                f"workspace (available: {available})",
                field="workflow.nodes",
            )
        if node["type"] == "condition":
            source = nodes.get(node["source"])
            wanted = {"has_passages": "retrieve", "tool_ok": "tool"}.get(node["check"])
            if source is None:
                raise InvalidInput(
                    f"condition {node_id!r} reads unknown node {node['source']!r}",
                    field="workflow.nodes",
                )
            if wanted and source["type"] != wanted:
                raise InvalidInput(
                    f"condition {node_id!r} check {node['check']!r} needs a {wanted} node as "
                    f"source, {node['source']!r} is {source['type']}",
                    field="workflow.nodes",
                )
            if node["check"] == "contains" and "value" not in node:
                raise InvalidInput(
                    f"condition {node_id!r} check 'contains' needs a 'value'",
                    field="workflow.nodes",
                )
    _check_placeholders(nodes, order)
    return Workflow(nodes, edges, start, tuple(order), dict(workflow))


def _check_schema(workflow: Mapping[str, Any]) -> None:
    # Check each node against its own type's schema first: the published oneOf would only say
    # "is not valid under any of the given schemas".
    nodes = workflow.get("nodes")
    if isinstance(nodes, list):
        for index, node in enumerate(nodes):
            node_type = node.get("type") if isinstance(node, dict) else None
            if node_type in _NODE_VALIDATORS:
                _raise_first(_NODE_VALIDATORS[node_type], node, f"nodes.{index}")
            elif isinstance(node, dict) and "type" in node:
                raise InvalidInput(
                    f"workflow schema: nodes.{index}: unknown node type {node_type!r} "
                    f"(one of {', '.join(NODE_TYPES)})",
                    field="workflow",
                )
    _raise_first(_VALIDATOR, workflow, "")


def _raise_first(validator: jsonschema.Draft202012Validator, instance: Any, prefix: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = errors[0]
    where = ".".join([prefix] * bool(prefix) + [str(p) for p in error.absolute_path])
    raise InvalidInput(f"workflow schema: {where or 'workflow'}: {error.message}", field="workflow")


def _check_outgoing(node_id: str, node_type: str, edges: list[Edge]) -> None:
    if node_type == "end":
        if edges:
            raise InvalidInput(f"end node {node_id!r} has outgoing edges", field="workflow.edges")
        return
    if node_type == "condition":
        whens = sorted(e.when or "" for e in edges)
        if whens != ["false", "true"]:
            raise InvalidInput(
                f"condition {node_id!r} needs exactly one 'true' and one 'false' edge",
                field="workflow.edges",
            )
        return
    if len(edges) != 1:
        raise InvalidInput(
            f"node {node_id!r} needs exactly one outgoing edge, has {len(edges)}"
            + (" (no end reachable)" if not edges else ""),
            field="workflow.edges",
        )


def _topological_order(start: str, outgoing: Mapping[str, list[Edge]]) -> list[str]:
    """Nodes reachable from start in topological order; raises on a cycle."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    post: list[str] = []
    stack: list[tuple[str, int]] = [(start, 0)]
    path: list[str] = []
    state[start] = 1
    path.append(start)
    while stack:
        node, index = stack.pop()
        targets = [e.target for e in outgoing[node]]
        if index < len(targets):
            stack.append((node, index + 1))
            target = targets[index]
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise InvalidInput(
                    f"the workflow has a cycle: {' -> '.join(cycle)}", field="workflow.edges"
                )
            if target not in state:
                state[target] = 1
                path.append(target)
                stack.append((target, 0))
        else:
            state[node] = 2
            path.pop()
            post.append(node)
    return post[::-1]


def _check_placeholders(nodes: Mapping[str, dict[str, Any]], order: list[str]) -> None:
    position = {node_id: i for i, node_id in enumerate(order)}
    for node_id, node in nodes.items():
        texts = [node.get("prompt"), node.get("query")]
        texts += [v for v in (node.get("arguments") or {}).values() if isinstance(v, str)]
        for text in texts:
            for name in PLACEHOLDER.findall(text or ""):
                if name == "input":
                    continue
                if name not in nodes:
                    raise InvalidInput(
                        f"node {node_id!r} refers to unknown node {{{{{name}}}}}",
                        field="workflow.nodes",
                    )
                if position[name] >= position[node_id]:
                    raise InvalidInput(
                        f"node {node_id!r} refers to {{{{{name}}}}}, which does not run before it",
                        field="workflow.nodes",
                    )


def to_mermaid(workflow: Mapping[str, Any]) -> str:
    """A `flowchart TD` diagram of the workflow (nodes labelled with their type)."""
    shapes = {
        "start": ("([", "])"),
        "end": ("([", "])"),
        "condition": ("{", "}"),
        "human_review": ("[/", "/]"),
        "retrieve": ("[(", ")]"),
    }
    lines = ["flowchart TD"]
    for node in workflow.get("nodes", []):
        node_id = str(node.get("id"))
        node_type = str(node.get("type"))
        detail = node.get("tool") or node.get("check") or ""
        text = f"{node_id}: {node_type}" + (f" {detail}" if detail else "")
        opening, closing = shapes.get(node_type, ("[", "]"))
        lines.append(f'    {node_id}{opening}"{_escape(text)}"{closing}')
    for edge in workflow.get("edges", []):
        label = f"|{edge['when']}|" if edge.get("when") else ""
        lines.append(f"    {edge.get('from')} -->{label} {edge.get('to')}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


def placeholders(text: str) -> list[str]:
    """Names used as `{{name}}` in `text`."""
    return PLACEHOLDER.findall(text)


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace `{{name}}` with `values[name]` (unknown names are left as they are)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


__all__ = [
    "BUILTIN_TOOLS",
    "CONDITION_CHECKS",
    "NODE_TYPES",
    "WORKFLOW_SCHEMA",
    "Edge",
    "Workflow",
    "render",
    "to_mermaid",
    "validate_workflow",
]
