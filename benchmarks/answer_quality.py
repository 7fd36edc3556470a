"""Grounded-answer quality on the Debian FAQ development set with the default local model:
retrieval Hit@1/Hit@5/MRR, citation precision (on the gold passage or judged supporting by
the model) and coverage, not-found rate on answerable questions and on 20 questions the
corpus does not answer, and latency by stage.

    .venv/bin/python -m benchmarks.answer_quality [--limit 30] [--threads 1] [--out FILE]

Every question runs through the same pipeline `citeline ask` uses, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, bench_engines, ingest_files
from citeline.answers.evaluation import evaluate, load_questions
from citeline.db import migrate
from citeline.resources import Resources

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
UNANSWERABLE = Path(__file__).parent / "data" / "debian-faq-unanswerable.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=30, help="answerable questions to run")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--judge", default="default", help="model alias that judges citations")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "answers.json"
    )
    args = parser.parse_args()
    answerable = load_questions(EVAL / "questions.jsonl", args.limit)
    unanswerable = load_questions(UNANSWERABLE)
    with bench_engines() as (base, endpoints):
        settings = base.model_copy(
            update={"llm_threads": args.threads, "models_dir": ROOT / ".cache" / "models"}
        )
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            migrate.upgrade(resources.engine)
            kb = resources.knowledge().create("faq", "Debian FAQ")
            files = [(path, path.name) for path in sorted((EVAL / "corpus").glob("*.html"))]
            ingest_files(settings, endpoints, kb.id, files)
            began = time.perf_counter()

            def progress(number: int, outcome: Any) -> None:
                print(
                    f"{number:3} {outcome.status:<9} {outcome.timings.get('total_ms') or 0:8.0f} ms"
                    f"  {outcome.question.question[:70]}",
                    flush=True,
                )

            report = evaluate(
                resources,
                "faq",
                [*answerable, *unanswerable],
                judge=args.judge,
                progress=progress,
            )
            elapsed = time.perf_counter() - began
        finally:
            resources.close()
    summary = report.summary()
    summary["wall_seconds"] = round(elapsed, 1)
    summary["load_average"] = os.getloadavg()
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "summary": summary,
                "questions": [
                    {
                        "question": o.question.question,
                        "answerable": o.question.answerable,
                        "status": o.status,
                        "answer": o.answer,
                        "citations": o.citations,
                        "precise": o.precise,
                        "precise_gold": o.precise_gold,
                        "timings": o.timings,
                    }
                    for o in report.outcomes
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
