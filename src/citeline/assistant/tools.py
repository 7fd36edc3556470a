"""The tools a run may call: the built-in ones (search a knowledge base, cite) and external
ones that come through a `Toolbox` (the MCP client plugs in here), checked in one place.

A tool is called only if its name is among the conversation's allowed ones and its arguments
match its JSON schema; otherwise the model is told what was wrong and the run goes on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import jsonschema

from citeline.llm import ToolSpec

Policy = Literal["allow", "ask"]

SEARCH = "search_knowledge_base"
CITE = "cite"
BUILT_IN = (SEARCH, CITE)


class ToolResult(Protocol):
    """What calling an external tool gave."""

    @property
    def text(self) -> str: ...

    @property
    def is_error(self) -> bool: ...

    @property
    def duration_ms(self) -> float: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def notice(self) -> str | None: ...  # for the person (e.g. set your credentials)


class ExternalTool(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def policy(self) -> str: ...  # "allow" or "ask"

    def spec(self) -> ToolSpec: ...


class Toolbox(Protocol):
    """External tools for one run (the MCP client's `McpToolbox`)."""

    def tools(self) -> Sequence[ExternalTool]: ...

    def call(
        self, name: str, arguments: dict[str, Any], *, run_id: str | None = None
    ) -> ToolResult: ...


@dataclass(frozen=True)
class Tool:
    """A tool as the run sees it: what the model is shown, and who must agree to a call."""

    spec: ToolSpec
    policy: Policy
    built_in: bool


def search_spec(knowledge_bases: Sequence[str]) -> ToolSpec:
    properties: dict[str, Any] = {
        "query": {"type": "string", "minLength": 1, "description": "What to look for"}
    }
    if len(knowledge_bases) > 1:
        properties["knowledge_base"] = {"type": "string", "enum": list(knowledge_bases)}
    return ToolSpec(
        name=SEARCH,
        description=(
            "Search the conversation's knowledge bases; returns numbered passages [n] with "
            "their document ids. Cite a passage by writing its [n] after the sentence."
        ),
        parameters={
            "type": "object",
            "properties": properties,
            "required": ["query"],
            "additionalProperties": False,
        },
    )


CITE_SPEC = ToolSpec(
    name=CITE,
    description=(
        "Cite an exact quote from a passage number or from a tool call's result (its call "
        "id); returns the marker to write after the sentence that uses it."
    ),
    parameters={
        "type": "object",
        "properties": {
            "source": {"type": "string", "minLength": 1, "description": "passage n or call id"},
            "quote": {"type": "string", "minLength": 1, "description": "the exact words"},
        },
        "required": ["source", "quote"],
        "additionalProperties": False,
    },
)


def available(
    knowledge_bases: Sequence[str], toolbox: Toolbox | None, allowed: Sequence[str] | None
) -> dict[str, Tool]:
    """The tools this run offers the model, by name: built-in first, then the toolbox's,
    narrowed to `allowed` when the conversation names its tools."""
    tools: dict[str, Tool] = {}
    if knowledge_bases:
        tools[SEARCH] = Tool(search_spec(knowledge_bases), "allow", True)
    tools[CITE] = Tool(CITE_SPEC, "allow", True)
    for external in toolbox.tools() if toolbox is not None else ():
        if external.name in tools:
            continue  # a built-in name cannot be taken over
        policy: Policy = "allow" if external.policy == "allow" else "ask"
        tools[external.name] = Tool(external.spec(), policy, False)
    if allowed is not None:
        keep = set(allowed)
        tools = {name: tool for name, tool in tools.items() if name in keep}
    return tools


def problem(tools: dict[str, Tool], name: str, arguments: dict[str, Any]) -> str | None:
    """Why the call cannot be made, in words for the model; None when it can."""
    tool = tools.get(name)
    if tool is None:
        names = ", ".join(tools) or "none"
        return f"There is no tool named {name!r}. The tools you can call are: {names}."
    try:
        jsonschema.validate(arguments, tool.spec.parameters)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        return (
            f"The arguments for {name} do not match its schema ({where}: {exc.message}). "
            f"Its schema is {json.dumps(tool.spec.parameters, separators=(',', ':'))}."
        )
    except jsonschema.SchemaError as exc:
        return f"Tool {name} has an invalid schema and cannot be called: {exc.message}"
    return None
