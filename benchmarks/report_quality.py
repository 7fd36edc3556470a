"""Cited reports on the Debian FAQ development set with the default local model, written by
real workers (`citeline worker`, in-process mode, one llama.cpp thread each):

- strict precision: the cited span is, verbatim, the text of its document at its offsets
  (read back from the stored chunk), gold-free;
- judged precision: another model than the writer (the bundled Qwen2.5-Coder-0.5B) picks the
  span over another reference's quote, in both orders, as the one that states the sentence
  (`citeline.answers.judge`);
- coverage: the drafted claims that reached the report with a verified citation;
- sections grounded, time to the first finished section and to the whole report;
- the fan-out's speed-up: the first topic again, with its outline fixed, on 1 worker and on
  2 workers in the same run (models loaded before the clock starts).

    .venv/bin/python -m benchmarks.report_quality [--topics 5] [--sections 4] [--out FILE]

The topics are written for this benchmark, not taken from the questions of the set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.common import PYTHON, ROOT, bench_engines, child_env, ingest_files
from citeline.answers.judge import Judge
from citeline.auth import Access
from citeline.knowledge.models import Chunk
from citeline.llm.registry import NewVersion
from citeline.reports.models import Report, ReportSection
from citeline.resources import Resources
from citeline.settings import Settings

EVAL = ROOT.parent / "shared" / "eval" / "debian-faq"
TOPICS = [
    "Installing, upgrading and removing software packages on Debian",
    "Debian's distributions and release cycle: stable, testing and unstable",
    "Running Debian alongside other operating systems and their software",
    "Getting help with Debian and reporting problems",
    "How the Debian project is organised and how people contribute to it",
]
JUDGE = "judge"
JUDGE_MODEL = "qwen2.5-coder-0.5b"
ENDED = {"finished", "partial", "not_found", "failed", "stopped"}


@contextmanager
def workers(settings: Settings, count: int) -> Iterator[None]:
    """`count` real workers, each with the model loaded before this yields."""
    env = child_env(settings)
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "citeline", "worker", "--mode", "inprocess"],
            env=env,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        warm_up(settings, count)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)


def warm_up(settings: Settings, count: int) -> None:
    """One short generation per worker at once: each worker takes one and loads the model."""
    assert settings.database_url and settings.redis_url
    resources = Resources.connect(settings, settings.database_url, settings.redis_url)
    try:
        jobs = resources.jobs()
        queued = [
            jobs.enqueue(
                "llm.predict",
                {
                    "model": "report",
                    "target": "report",
                    "inputs": ["Say hello."],
                    "max_tokens": 4,
                    "temperature": 0.0,
                },
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + 600
        while any(jobs.get(j.id).state not in ("finished", "failed") for j in queued):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not load the model within 10 minutes")
            time.sleep(0.5)
    finally:
        resources.close()


def run_report(
    resources: Resources, kb: uuid.UUID, topic: str, sections: int, outline: list[str] | None
) -> uuid.UUID:
    started = resources.reports(Access.system()).start(
        topic, [str(kb)], sections=sections, outline=outline
    )
    deadline = time.monotonic() + 3600
    while True:
        with resources.sessions() as session:
            status = session.get_one(Report, started.report.id).status
        if status in ENDED:
            return started.report.id
        if time.monotonic() > deadline:
            raise SystemExit(f"the report on {topic!r} did not end within an hour")
        time.sleep(1.0)


def measure(resources: Resources, report_id: uuid.UUID, judge: bool = True) -> dict[str, Any]:
    with resources.sessions() as session:
        report = session.get_one(Report, report_id)
        rows = list(
            session.scalars(
                select(ReportSection)
                .where(ReportSection.report_id == report_id)
                .order_by(ReportSection.ordinal)
            )
        )
        document = report.document or {"sections": [], "references": []}
        references = {r["number"]: r for r in document["references"]}
        chunk_ids = [uuid.UUID(r["chunk_id"]) for r in references.values()]
        chunks = {c.id: c for c in session.scalars(select(Chunk).where(Chunk.id.in_(chunk_ids)))}
    sentences = [
        sentence
        for section in document["sections"]
        for paragraph in section["paragraphs"]
        for sentence in paragraph
    ]
    strict: list[bool] = []
    judged: list[bool] = []
    referee = Judge(resources.models(), JUDGE, "benchmark")
    for sentence in sentences:
        for number in sentence["citations"]:
            reference = references[number]
            chunk = chunks.get(uuid.UUID(reference["chunk_id"]))
            verbatim = chunk is not None and (
                chunk.text[reference["start"] - chunk.start : reference["end"] - chunk.start]
                == reference["quote"]
            )
            strict.append(verbatim)
            if judge:
                control = _control(references, sentence["citations"])
                judged.append(
                    verbatim and referee.supports(sentence["text"], reference["quote"], control)
                )
    kept = sum(len(row.sentences) for row in rows)
    dropped = sum(len(row.dropped) for row in rows)

    def seconds(end: datetime | None) -> float | None:
        if end is None or report.started_at is None:
            return None
        return round((end - report.started_at).total_seconds(), 1)

    return {
        "topic": report.topic,
        "status": report.status,
        "sections": len(rows),
        "sections_grounded": sum(row.status == "finished" for row in rows),
        "report_sentences": len(sentences),
        "cited_sentences": sum(bool(s["citations"]) for s in sentences),
        "citations": len(strict),
        "strict_precision": _share(strict),
        "judged_precision": _share(judged),
        "draft_claims": kept + dropped,
        "merged_repeats": kept - len(sentences),
        "coverage": round(kept / (kept + dropped), 3) if kept + dropped else None,
        "first_section_s": seconds(report.first_section_at),
        "total_s": seconds(report.finished_at),
        "model_calls": sum(len(row.model_calls) for row in rows),
        "input_tokens": sum(c["input_tokens"] for row in rows for c in row.model_calls),
        "output_tokens": sum(c["output_tokens"] for row in rows for c in row.model_calls),
    }


def _control(references: dict[int, dict[str, Any]], cited: list[int]) -> str | None:
    """The quote of the report's last reference that this sentence does not cite."""
    others = [r["quote"] for number, r in sorted(references.items()) if number not in cited]
    return others[-1] if others else None


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def speed_up(
    settings: Settings, resources: Resources, kb: uuid.UUID, topic: str, outline: list[str]
) -> dict[str, Any]:
    """The same report, outline fixed, on 1 worker and then on 2."""
    took: dict[int, float] = {}
    for count in (1, 2):
        with workers(settings, count):
            began = time.perf_counter()
            report_id = run_report(resources, kb, topic, len(outline), outline)
            took[count] = time.perf_counter() - began
            print(
                f"{count} worker(s): {took[count]:.1f} s ({measure_status(resources, report_id)})"
            )
    return {
        "outline_sections": len(outline),
        "one_worker_s": round(took[1], 1),
        "two_workers_s": round(took[2], 1),
        "speed_up": round(took[1] / took[2], 2),
    }


def measure_status(resources: Resources, report_id: uuid.UUID) -> str:
    with resources.sessions() as session:
        return session.get_one(Report, report_id).status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=len(TOPICS), help="how many topics")
    parser.add_argument("--sections", type=int, default=4, help="sections per report")
    parser.add_argument("--no-speed-up", action="store_true", help="skip the 1 vs 2 workers run")
    parser.add_argument("--model", default=None, help="GGUF model name (default: the settings')")
    parser.add_argument("--pages", type=int, default=None, help="only the first N FAQ pages")
    parser.add_argument("--no-judge", action="store_true", help="skip judged precision")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "reports.json"
    )
    args = parser.parse_args()
    with bench_engines() as (base, endpoints):
        update: dict[str, Any] = {"llm_threads": 1, "models_dir": ROOT / ".cache" / "models"}
        if args.model:
            update["llm_model"] = args.model
        settings = base.model_copy(update=update)
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            registry = resources.models().registry
            registry.ensure_defaults()
            registry.add_version(NewVersion(JUDGE, "local", JUDGE_MODEL))
            kb = resources.knowledge().create("faq", "Debian FAQ")
            pages = sorted((EVAL / "corpus").glob("*.html"))[: args.pages]
            files = [(path, path.name) for path in pages]
            ingest_files(settings, endpoints, kb.id, files)
            report_ids = []
            with workers(settings, 2):
                for topic in TOPICS[: args.topics]:
                    report_ids.append(run_report(resources, kb.id, topic, args.sections, None))
                    print(f"written: {topic} ({measure_status(resources, report_ids[-1])})")
            results = [measure(resources, r, judge=not args.no_judge) for r in report_ids]
            for result in results:
                print(json.dumps(result))
            fan_out = None
            if not args.no_speed_up:
                with resources.sessions() as session:
                    outline = [
                        row.title
                        for row in session.scalars(
                            select(ReportSection)
                            .where(ReportSection.report_id == report_ids[0])
                            .order_by(ReportSection.ordinal)
                        )
                    ]
                if outline:
                    fan_out = speed_up(settings, resources, kb.id, TOPICS[0], outline)
        finally:
            resources.close()
    summary = summarise(results, fan_out)
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "reports": results}, indent=2))


def summarise(results: list[dict[str, Any]], fan_out: dict[str, Any] | None) -> dict[str, Any]:
    citations = sum(r["citations"] for r in results)

    def weighted(name: str) -> float | None:
        parts = [(r[name], r["citations"]) for r in results if r[name] is not None]
        total = sum(n for _, n in parts)
        return round(sum(v * n for v, n in parts) / total, 3) if total else None

    claims = sum(r["draft_claims"] for r in results)
    kept = sum(round((r["coverage"] or 0) * r["draft_claims"]) for r in results)
    firsts = [r["first_section_s"] for r in results if r["first_section_s"] is not None]
    totals = [r["total_s"] for r in results if r["total_s"] is not None]
    return {
        "reports": len(results),
        "statuses": [r["status"] for r in results],
        "citations": citations,
        "strict_precision": weighted("strict_precision"),
        "judged_precision": weighted("judged_precision"),
        "judge": JUDGE_MODEL,
        "coverage": round(kept / claims, 3) if claims else None,
        "sections_grounded": f"{sum(r['sections_grounded'] for r in results)}"
        f"/{sum(r['sections'] for r in results)}",
        "first_section_s_median": statistics.median(firsts) if firsts else None,
        "total_s_median": statistics.median(totals) if totals else None,
        "fan_out": fan_out,
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
