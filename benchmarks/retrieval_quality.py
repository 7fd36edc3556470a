"""Retrieval quality on the Debian FAQ development set: Hit@1, Hit@5 and MRR@10 for keyword
(BM25), dense and hybrid search, and for the previous hybrid default (reciprocal rank fusion,
k=60) fused offline from the same two rankings. A hit is a retrieved chunk from the gold page
that shares a run of eight consecutive words with the gold answer passage (see
../shared/eval/debian-faq/README.md). Three question sets: the FAQ's own headings, paraphrased
headings, and keyword-style questions (commands, file names) where BM25 should win.

    .venv/bin/python -m benchmarks.retrieval_quality [--corpus DIR] [--questions FILE]
        [--paraphrased FILE] [--keyword FILE]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, bench_engines, ingest_files, percentile
from citeline.answers.evaluation import shingles
from citeline.knowledge.retrieval import CANDIDATES, Hit, reciprocal_rank_fusion
from citeline.knowledge.service import KnowledgeService, hit_json
from citeline.resources import Resources

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
DATA = Path(__file__).parent / "data"
PARAPHRASED = DATA / "debian-faq-paraphrased.jsonl"
KEYWORD = DATA / "debian-faq-keyword.jsonl"
MODES = ("keyword", "dense", "hybrid")
RRF_ROW = "RRF k=60"


def is_hit(hit: dict[str, object], page: str, gold: set[tuple[str, ...]]) -> bool:
    return hit["source"] == page and bool(shingles(str(hit["text"])) & gold)


class Tally:
    def __init__(self) -> None:
        self.hit1 = self.hit5 = 0
        self.reciprocal = 0.0
        self.latencies: list[float] = []

    def add(self, flags: Sequence[bool]) -> None:
        self.hit1 += list(flags[:1]) == [True]
        self.hit5 += any(flags[:5])
        first = next((i for i, f in enumerate(flags[:10]) if f), None)
        self.reciprocal += 0.0 if first is None else 1.0 / (first + 1)


def ranking(hits: list[Hit]) -> list[tuple[uuid.UUID, float]]:
    return [(hit.chunk_id, hit.score) for hit in hits]


def evaluate(
    knowledge: KnowledgeService, kb_id: uuid.UUID, label: str, questions: list[dict[str, Any]]
) -> None:
    if not questions:
        print(f"{label}: no question on the pages ingested")
        return
    tallies = {name: Tally() for name in (*MODES, RRF_ROW)}
    for question in questions:
        gold = shingles(question["gold"])
        for mode in MODES:
            started = time.perf_counter()
            hits = knowledge.search(kb_id, question["question"], k=10, mode=mode)
            tallies[mode].latencies.append(time.perf_counter() - started)
            tallies[mode].add([is_hit(hit_json(h), question["page"], gold) for h in hits])
        # The previous default, fused from the same candidate lists hybrid search fuses.
        lists = {
            mode: knowledge.search(kb_id, question["question"], k=CANDIDATES, mode=mode)
            for mode in ("keyword", "dense")
        }
        details = {h.chunk_id: hit_json(h) for hits in lists.values() for h in hits}
        fused = reciprocal_rank_fusion({m: ranking(h) for m, h in lists.items()}, 10)
        tallies[RRF_ROW].add([is_hit(details[h.chunk_id], question["page"], gold) for h in fused])
    n = len(questions)
    print(f"{label} ({n} questions)")
    print(f"{'method':9} {'Hit@1':>6} {'Hit@5':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for name, tally in tallies.items():
        timing = (
            f"{percentile(tally.latencies, 50) * 1000:7.1f} "
            f"{percentile(tally.latencies, 95) * 1000:7.1f}"
            if tally.latencies
            else f"{'-':>7} {'-':>7}"
        )
        print(
            f"{name:9} {tally.hit1 / n:6.3f} {tally.hit5 / n:6.3f} {tally.reciprocal / n:7.3f} "
            + timing
        )
    single = [tallies["keyword"], tallies["dense"]]
    hybrid = tallies["hybrid"]
    met = hybrid.hit5 >= max(t.hit5 for t in single) and hybrid.reciprocal > max(
        t.reciprocal for t in single
    )
    print(
        "goal (hybrid Hit@5 >= and MRR > the better single method): "
        + ("met" if met else "not met")
    )


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=EVAL / "corpus")
    parser.add_argument("--questions", type=Path, default=EVAL / "questions.jsonl")
    parser.add_argument("--paraphrased", type=Path, default=PARAPHRASED)
    parser.add_argument("--keyword", type=Path, default=KEYWORD)
    parser.add_argument("--pages", type=int, default=None, help="only the first N pages")
    args = parser.parse_args()
    pages = sorted(args.corpus.glob("*.html"))[: args.pages]
    names = {path.name for path in pages}
    questions = [q for q in load(args.questions) if q["page"] in names]
    by_id = {q["id"]: q for q in questions}
    paraphrased = [
        {**by_id[p["id"]], "question": p["question"]}
        for p in load(args.paraphrased)
        if p["id"] in by_id
    ]
    keyword = [q for q in load(args.keyword) if q["page"] in names]
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            knowledge = resources.knowledge()
            kb = knowledge.create("debian-faq")
            began = time.perf_counter()
            ingest_files(settings, endpoints, kb.id, [(path, path.name) for path in pages])
            ingest_seconds = time.perf_counter() - began
            kb = knowledge.get(kb.id)
            print(
                f"ingested {len(pages)} pages into {kb.chunk_count} chunks in {ingest_seconds:.1f}s"
            )
            evaluate(knowledge, kb.id, "FAQ headings as questions", questions)
            evaluate(knowledge, kb.id, "paraphrased questions (benchmarks/data)", paraphrased)
            evaluate(knowledge, kb.id, "keyword-style questions (benchmarks/data)", keyword)
        finally:
            resources.close()


if __name__ == "__main__":
    main()
