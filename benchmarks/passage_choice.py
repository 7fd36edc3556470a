"""Which passages the model reads: the gold passage read first, read at all, and how many
passages are read, when the retrieved candidates are ordered by the question's similarity to
each passage's text (before) or to its text or heading, whichever is closer (now,
`answers.relevance.on_question`). No model writes anything: this isolates the choice.

    .venv/bin/python -m benchmarks.passage_choice [--sets debian tools] [--limit N]
        [--extra N] [--margin 0.10]

The margin and the ordering were chosen on `debian`; `tools` is the check.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.answer_quality import SETS
from benchmarks.common import bench_engines, ingest_files
from citeline.answers.evaluation import on_gold
from citeline.answers.passages import Passage, from_hits
from citeline.answers.relevance import on_question
from citeline.resources import Resources

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def by_text(
    question: str, passages: Sequence[Passage], embed: Embed, margin: float, most: int
) -> list[int]:
    """The choice before, by the passage's text alone: `on_question` with each passage's text
    standing as its heading."""
    alone = [dataclasses.replace(p, heading_path=(p.text,)) for p in passages]
    chosen = on_question(question, alone, embed, margin, most)
    return [alone.index(p) for p in chosen.passages]


def measure(name: str, limit: int | None, extra: int | None, margin: float) -> dict[str, Any]:
    files, questions = SETS[name](limit, extra)
    asked = [q for q in questions if q.answerable and q.gold]
    tally = {m: {"first": 0, "read": 0, "passages": 0} for m in ("text", "heading_or_text")}
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            kb = resources.knowledge().create("eval", name)
            ingest_files(settings, endpoints, kb.id, [(path, path.name) for path in files])
            knowledge = resources.knowledge()
            embed = knowledge.embedder.embed
            for question in asked:
                hits = knowledge.search(kb.id, question.question, k=settings.answer_candidates)
                found = from_hits(hits)
                if not found:
                    continue
                gold = [on_gold(p.text, p.source, question.as_mapping()) for p in found]
                most = settings.answer_max_passages
                chosen = on_question(question.question, found, embed, margin, most)
                before = by_text(question.question, found, embed, margin, most)
                now = [found.index(p) for p in chosen.passages]
                for method, read in (("text", before), ("heading_or_text", now)):
                    tally[method]["first"] += gold[read[0]]
                    tally[method]["read"] += any(gold[i] for i in read)
                    tally[method]["passages"] += len(read)
        finally:
            resources.close()
    return {
        "set": name,
        "questions": len(asked),
        "margin": margin,
        **{
            method: {
                "gold_read_first": t["first"],
                "gold_read": t["read"],
                "passages_read_mean": round(t["passages"] / max(1, len(asked)), 2),
            }
            for method, t in tally.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=["debian", "tools"])
    parser.add_argument("--limit", type=int, default=None, help="heading questions per set")
    parser.add_argument("--extra", type=int, default=None, help="questions of each other kind")
    parser.add_argument("--margin", type=float, default=0.10)
    args = parser.parse_args()
    figures = [measure(name, args.limit, args.extra, args.margin) for name in args.sets]
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
