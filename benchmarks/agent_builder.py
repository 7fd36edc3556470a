"""Agent builder conversations with the local model: 10 scripted conversations, each a person
who answers the question asked at each stage in their own words (some say everything at once,
some go back to change a field).

Measured, on one real worker (`citeline worker --mode inprocess`, the model loaded before the
clock starts):
- turns to completion, against the fewest the stage machine needs for that script;
- the share of fields extracted correctly (type, goals, tone, tools, review) at the end;
- latency per turn; and each conversation's first turn against a bare `llm.chat` job of the
  same constrained request in the same run (the builder's own overhead: the queue round trip,
  the checks, the embedding of the goals, the Redis and PostgreSQL writes).

    python -m benchmarks.agent_builder [--conversations 10] [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT, bench_engines, child_env
from citeline.agent_builder import BuilderService
from citeline.agent_builder.interpret import STAGE_KEYS, request_for
from citeline.agent_builder.model import JobAsk
from citeline.agent_builder.stages import QUESTIONS, Stage
from citeline.resources import Resources
from citeline.settings import Settings


@dataclass(frozen=True)
class Script:
    name: str
    says: dict[str, str]  # stage -> what the person says when asked it
    # goals: words that must appear in the collected goals; tools "suggested": the ones the
    # builder suggested (the person accepts the checklist)
    expected: dict[str, Any]
    fewest: int  # turns the stage machine needs if every message is read right
    change_at_review: str | None = None  # a change the person asks for once at review
    extra: dict[str, str] = field(default_factory=dict)


SCRIPTS = [
    Script(
        "hr-handbook",
        {
            "initial": "I want a formal question answering agent that answers employee "
            "questions about our HR handbook.",
            "tools": "yes, use the suggested tools",
            "workflow": "no, send answers directly",
            "review": "looks good, confirm",
        },
        {"agent_type": "question_answering", "goals": ["handbook"], "tone": "formal",
         "tools": "suggested", "human_review": "no"},
        4,
    ),
    Script(
        "shop-support",
        {
            "initial": "I need a customer support agent.",
            "goals": "help customers track orders and handle returns",
            "tone": "friendly",
            "tools": "yes",
            "workflow": "yes, a person should review each reply",
            "review": "confirm",
        },
        {"agent_type": "customer_support", "goals": ["orders", "returns"], "tone": "friendly",
         "tools": "suggested", "human_review": "yes"},
        6,
    ),
    Script(
        "incident-digest",
        {
            "initial": "I need a summarizer.",
            "goals": "summarize weekly incident reports and flag outages",
            "tone": "concise",
            "tools": "no tools",
            "workflow": "no",
            "review": "ok, done",
        },
        {"agent_type": "summarizer", "goals": ["incident"], "tone": "concise", "tools": [],
         "human_review": "no"},
        6,
    ),
    Script(
        "papers",
        {
            "initial": "A research agent that tracks new papers on retrieval, technical tone.",
            "tools": "use search_knowledge_base",
            "workflow": "no review needed",
            "review": "looks good",
        },
        {"agent_type": "research", "goals": ["papers"], "tone": "technical",
         "tools": ["search_knowledge_base"], "human_review": "no"},
        4,
    ),
    Script(
        "release-notes",
        {
            "initial": "I need a writer.",
            "goals": "draft release notes from the changelog",
            "tone": "neutral",
            "tools": "yes please",
            "workflow": "yes, someone approves each draft",
            "review": "great, finish",
        },
        {"agent_type": "writer", "goals": ["release"], "tone": "neutral",
         "tools": "suggested", "human_review": "yes"},
        6,
    ),
    Script(
        "it-helpdesk-change",
        {
            "initial": "A friendly helpdesk support agent that helps staff reset passwords.",
            "tools": "ok",
            "workflow": "no",
            "review": "confirm",
        },
        {"agent_type": "customer_support", "goals": ["passwords"], "tone": "formal",
         "tools": "suggested", "human_review": "no"},
        5,
        change_at_review="change the tone to formal",
    ),
    Script(
        "legal-qa",
        {
            "initial": "An agent to answer questions about our contracts.",
            "tone": "professional",
            "tools": "accept",
            "workflow": "yes",
            "review": "yes",
        },
        {"agent_type": "question_answering", "goals": ["contracts"], "tone": "formal",
         "tools": "suggested", "human_review": "yes"},
        5,
    ),
    Script(
        "meeting-notes",
        {
            "initial": "Summarize meeting notes into action items, keep it brief.",
            "tools": "none",
            "workflow": "no",
            "review": "done",
        },
        {"agent_type": "summarizer", "goals": ["meeting"], "tone": "concise", "tools": [],
         "human_review": "no"},
        4,
    ),
    Script(
        "market-research-change",
        {
            "initial": "A research agent that compares competitors' pricing, in a neutral tone.",
            "tools": "yes",
            "workflow": "no",
            "review": "confirm",
        },
        {"agent_type": "research", "goals": ["pricing"], "tone": "technical",
         "tools": "suggested", "human_review": "no"},
        5,
        change_at_review="actually, change the tone to technical",
    ),
    Script(
        "blog",
        {
            "initial": "A warm, friendly writer for our product blog.",
            "goals": "write blog posts about new features",
            "tools": "yes",
            "workflow": "yes, review before publishing",
            "review": "perfect",
        },
        {"agent_type": "writer", "goals": ["blog"], "tone": "friendly",
         "tools": "suggested", "human_review": "yes"},
        5,
    ),
]  # fmt: skip


@contextmanager
def worker(settings: Settings) -> Iterator[None]:
    process = subprocess.Popen(
        [PYTHON, "-m", "citeline", "worker", "--mode", "inprocess"],
        env=child_env(settings),
        start_new_session=True,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(60)


def bare(builder: BuilderService, resources: Resources, stage: Stage, text: str) -> float:
    """The same constrained request as a plain chat job: the baseline of a turn."""
    ask = JobAsk(resources.jobs(), resources.redis, builder.settings.agent_builder_model, 600)
    began = time.monotonic()
    ask(request_for(STAGE_KEYS[stage], QUESTIONS[stage], text))
    return time.monotonic() - began


def converse(builder: BuilderService, script: Script, max_turns: int) -> dict[str, Any]:
    view = builder.create()
    session_id = uuid.UUID(view.state.id)
    latencies: list[float] = []
    changed = False
    stages: list[str] = []
    while view.state.status == "active" and len(latencies) < max_turns:
        stage = view.state.stage
        if stage == "review" and script.change_at_review and not changed:
            text, changed = script.change_at_review, True
        else:
            text = script.says.get(stage) or script.says["initial"]
        stages.append(stage)
        began = time.monotonic()
        view = builder.message(session_id, text, None)
        latencies.append(time.monotonic() - began)
    fields = view.state.fields
    right = {}
    for name, expected in script.expected.items():
        if name == "goals":
            goals = " ".join(fields["goals"]).lower() if isinstance(fields["goals"], list) else ""
            right[name] = all(word in goals for word in expected)
        elif expected == "suggested":
            right[name] = fields[name] == view.state.suggested_tools
        else:
            right[name] = fields[name] == expected
    return {
        "name": script.name,
        "completed": view.state.status == "completed",
        "turns": len(latencies),
        "fewest": script.fewest,
        "stages": stages,
        "fields_right": right,
        "fields": fields,
        "turn_s": [round(t, 2) for t in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=len(SCRIPTS))
    parser.add_argument("--model", default=None, help="GGUF model name (default: the settings')")
    parser.add_argument("--max-turns", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "agent_builder.json"
    )
    args = parser.parse_args()
    with bench_engines() as (base, endpoints):
        update: dict[str, Any] = {"llm_threads": 1}
        if base.models_dir is None:  # CITELINE_MODELS_DIR wins
            update["models_dir"] = ROOT / ".cache" / "models"
        if args.model:
            update["llm_model"] = args.model
        settings = base.model_copy(update=update)
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            resources.models().registry.ensure_defaults()
            builder = resources.builder()
            with worker(settings):
                bare(builder, resources, Stage.tone, "formal")  # loads the model
                results = []
                baseline = []
                for script in SCRIPTS[: args.conversations]:
                    results.append(converse(builder, script, args.max_turns))
                    baseline.append(bare(builder, resources, Stage.initial, script.says["initial"]))
                    print(json.dumps(results[-1]), flush=True)
        finally:
            resources.close()
    summary = summarise(results, baseline)
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "conversations": results}, indent=2))


def summarise(results: list[dict[str, Any]], baseline: list[float]) -> dict[str, Any]:
    turns = [t for r in results for t in r["turn_s"]]
    right = [ok for r in results for ok in r["fields_right"].values()]
    per_field: dict[str, list[bool]] = {}
    for r in results:
        for name, ok in r["fields_right"].items():
            per_field.setdefault(name, []).append(ok)
    return {
        "conversations": len(results),
        "completed": sum(r["completed"] for r in results),
        "turns_mean": round(statistics.fmean(r["turns"] for r in results), 2),
        "turns_over_fewest": round(
            sum(r["turns"] for r in results) / sum(r["fewest"] for r in results), 3
        ),
        "fields_right_share": round(sum(right) / len(right), 3),
        "fields_right_by_field": {k: round(sum(v) / len(v), 2) for k, v in per_field.items()},
        "turn_s_median": round(statistics.median(turns), 2),
        "turn_s_p90": round(sorted(turns)[int(0.9 * (len(turns) - 1))], 2),
        "bare_chat_s_median": round(statistics.median(baseline), 2),
        # Each conversation's first turn against the same request as a bare chat job, sent
        # right after it (both read the same prompt prefix from llama.cpp's cache).
        "first_turn_over_bare_chat": round(
            statistics.median(r["turn_s"][0] / b for r, b in zip(results, baseline, strict=True)),
            3,
        ),
    }


if __name__ == "__main__":
    main()
