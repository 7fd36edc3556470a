"""Tool-choice accuracy of a bundled local model: 20 requests, each with the tool it should
call (or none: answer directly), offered the assistant's built-in tools (search a knowledge
base, cite) and two described tools (specs only: nothing is called). A choice counts when the
model picks the expected tool; its arguments count when they also match the tool's schema
(checked as the assistant checks them). The baseline, in the same run, is always choosing
the most frequent expected tool.

    .venv/bin/python -m benchmarks.tool_choice [--model qwen2.5-coder-1.5b] [--limit 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from citeline.assistant import tools as toolkit
from citeline.assistant.loop import SYSTEM
from citeline.llm.bundled import gguf_path
from citeline.llm.messages import ChatRequest, ChatResult, Message, ToolSpec
from citeline.llm.providers.local import LocalModelConfig, LocalProvider
from citeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_BASES = ["harbour", "manuals"]
FAKE = [
    ToolSpec(
        name="get_time",
        description="The current local time in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}},
            "required": ["city"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        name="create_ticket",
        description="Open a ticket in the support tracker.",
        parameters={
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "priority": {"type": "string", "enum": ["low", "normal", "high"]},
            },
            "required": ["title"],
            "additionalProperties": False,
        },
    ),
]
ANSWER = None  # the model should answer without a tool

CONTEXT = (
    "[1] (Building the Varnholm lighthouse) The lighthouse of Varnholm was built in 1847 by "
    "the harbour guild.\n[2] (The lamps of Varnholm) Electric light came to the tower in 1936."
)
# (request, expected tool or None, whether the tool result above is already in the prompt)
REQUESTS: list[tuple[str, str | None, bool]] = [
    ("When was the Varnholm lighthouse built?", toolkit.SEARCH, False),
    ("Search the harbour knowledge base for the keepers of the lighthouse.", toolkit.SEARCH, False),
    ("What do our manuals say about resetting the pump controller?", toolkit.SEARCH, False),
    ("Find passages about the Fresnel lens in the documents.", toolkit.SEARCH, False),
    ("Who was the last keeper of the Varnholm light, according to our documents?",
     toolkit.SEARCH, False),
    ("Look up the warranty period in the manuals.", toolkit.SEARCH, False),
    ("What did the first lamp of the lighthouse burn? Check the knowledge base.",
     toolkit.SEARCH, False),
    ("Is there anything in the harbour documents about storms?", toolkit.SEARCH, False),
    ("What time is it in Tokyo right now?", "get_time", False),
    ("Tell me the current time in Paris.", "get_time", False),
    ("It's late here; what's the local time in New York?", "get_time", False),
    ("Open a ticket: the pump in hall 3 is leaking, high priority.", "create_ticket", False),
    ("Please file a support ticket titled 'Printer offline' with low priority.",
     "create_ticket", False),
    ("Create a ticket so someone replaces the broken door lock.", "create_ticket", False),
    ("Cite the exact words from passage 1 that say when the lighthouse was built.",
     toolkit.CITE, True),
    ("Cite passage 2's sentence about electric light, word for word.", toolkit.CITE, True),
    ("Hello! Who are you?", ANSWER, False),
    ("Thanks, that is all I needed.", ANSWER, False),
    ("Translate 'good morning' into French.", ANSWER, False),
    ("What is 12 times 7?", ANSWER, False),
]  # fmt: skip


def offered() -> dict[str, toolkit.Tool]:
    tools = toolkit.available(KNOWLEDGE_BASES, None, None)
    for spec in FAKE:
        tools[spec.name] = toolkit.Tool(spec, "allow", False)
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=Settings().llm_model, help="bundled name or .gguf")
    parser.add_argument("--limit", type=int, default=len(REQUESTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=ROOT / ".cache" / "models")
    args = parser.parse_args()
    config = LocalModelConfig(
        path=gguf_path(args.model, args.models_dir), context_tokens=4096, threads=args.threads
    )
    provider = LocalProvider(config)
    tools = offered()
    specs = [tool.spec for tool in tools.values()]
    chosen = right = valid = 0
    seconds: list[float] = []
    requests = REQUESTS[: args.limit]
    for text, expected, with_context in requests:
        user = f"{CONTEXT}\n\n{text}" if with_context else text
        request = ChatRequest(
            messages=[Message.system(SYSTEM), Message.user(user)],
            tools=specs,
            max_tokens=160,
            temperature=0,
        )
        began = time.perf_counter()
        result = ChatResult.collect(list(provider.stream(args.model, request)))
        seconds.append(time.perf_counter() - began)
        call = result.tool_calls[0] if result.tool_calls else None
        picked = call.name if call else None
        ok = picked == expected
        fits = ok and (call is None or toolkit.problem(tools, call.name, call.arguments) is None)
        chosen += call is not None
        right += ok
        valid += fits
        shown = f"{picked}({call.arguments})" if call else f"answer {result.text[:60]!r}"
        print(f"{'ok ' if fits else 'BAD' if not ok else 'ARG'} expected {expected}: {shown}")
    count = len(requests)
    majority = Counter(expected for _, expected, _ in requests).most_common(1)[0][1]
    print(f"\n## {args.model}, {count} requests, {len(specs)} tools offered")
    print(f"tool choice accuracy: {right}/{count} = {right / count:.2f}")
    print(f"choice and valid arguments: {valid}/{count} = {valid / count:.2f}")
    print(f"baseline (always the most frequent expected tool): {majority / count:.2f}")
    print(f"ratio accuracy / baseline: {right / max(1, majority):.2f}")
    print(f"tool called in {chosen}/{count}; seconds per request: median "
          f"{statistics.median(seconds):.1f}, total {sum(seconds):.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
