"""Retrieval quality on the Debian FAQ development set: Hit@1, Hit@5 and MRR@10 for keyword
(BM25), dense and hybrid search. A hit is a retrieved chunk from the gold page that shares a run
of eight consecutive words with the gold answer passage (see ../shared/eval/debian-faq/README.md).

    .venv/bin/python -m benchmarks.retrieval_quality [--corpus DIR] [--questions FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, bench_engines, ingest_files, percentile
from citeline.knowledge.service import KnowledgeService, hit_json
from citeline.resources import Resources

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
PARAPHRASED = Path(__file__).parent / "data" / "debian-faq-paraphrased.jsonl"
RUN = 8


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shingles(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + RUN]) for i in range(len(tokens) - RUN + 1)}


def is_hit(hit: dict[str, object], page: str, gold: set[tuple[str, ...]]) -> bool:
    return hit["source"] == page and bool(shingles(str(hit["text"])) & gold)


def evaluate(
    knowledge: KnowledgeService, kb_id: uuid.UUID, label: str, questions: list[dict[str, Any]]
) -> None:
    print(f"{label} ({len(questions)} questions)")
    print(f"{'method':8} {'Hit@1':>6} {'Hit@5':>6} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for mode in ("keyword", "dense", "hybrid"):
        hit1 = hit5 = 0
        reciprocal = 0.0
        latencies = []
        for question in questions:
            gold = shingles(question["gold"])
            started = time.perf_counter()
            hits = knowledge.search(kb_id, question["question"], k=10, mode=mode)
            latencies.append(time.perf_counter() - started)
            flags = [is_hit(hit_json(h), question["page"], gold) for h in hits]
            hit1 += flags[:1] == [True]
            hit5 += any(flags[:5])
            first = next((i for i, f in enumerate(flags) if f), None)
            reciprocal += 0.0 if first is None else 1.0 / (first + 1)
        n = len(questions)
        print(
            f"{mode:8} {hit1 / n:6.3f} {hit5 / n:6.3f} {reciprocal / n:7.3f} "
            f"{percentile(latencies, 50) * 1000:7.1f} {percentile(latencies, 95) * 1000:7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=EVAL / "corpus")
    parser.add_argument("--questions", type=Path, default=EVAL / "questions.jsonl")
    parser.add_argument("--paraphrased", type=Path, default=PARAPHRASED)
    args = parser.parse_args()
    questions = [
        json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()
    ]
    by_id = {q["id"]: q for q in questions}
    paraphrased = [
        {**by_id[p["id"]], "question": p["question"]}
        for p in map(json.loads, args.paraphrased.read_text().splitlines())
    ]
    with bench_engines() as (settings, endpoints):
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            knowledge = resources.knowledge()
            kb = knowledge.create("debian-faq")
            pages = sorted(args.corpus.glob("*.html"))
            began = time.perf_counter()
            ingest_files(settings, endpoints, kb.id, [(path, path.name) for path in pages])
            ingest_seconds = time.perf_counter() - began
            kb = knowledge.get(kb.id)
            print(
                f"ingested {len(pages)} pages into {kb.chunk_count} chunks in {ingest_seconds:.1f}s"
            )
            evaluate(knowledge, kb.id, "FAQ headings as questions", questions)
            evaluate(knowledge, kb.id, "paraphrased questions (benchmarks/data)", paraphrased)
        finally:
            resources.close()


if __name__ == "__main__":
    main()
