"""Grounded-answer quality on a development set with the default local model: retrieval
Hit@1/Hit@5/MRR, strict citation precision (the cited span lies in the gold passage) and
judged precision (or a judge model, never the one that wrote the answer, says the span supports
the sentence), coverage, not-found rates on answerable and unanswerable questions, and latency
by stage (time to the preview, to the first token, to the first verified sentence, total), per
kind of question (headings, paraphrased, keyword-only, foreign-language, false-premise,
unanswerable).

    .venv/bin/python -m benchmarks.answer_quality [--set debian|tools|check] [--limit 30]
        [--extra 5] [--threads CORES] [--judge qwen2.5-coder-0.5b] [--out FILE]
    .venv/bin/python -m benchmarks.answer_quality --set tools --rescore FILE
    .venv/bin/python -m benchmarks.answer_quality --set tools --reverify FILE

Sets: `debian` (../shared/eval/debian-faq with benchmarks/data/debian-faq-*.jsonl) and
`tools` (benchmarks/data/tools-faq: FAQs of zlib, xz, procps and base-files as plain text,
with manuals as distractors), `check` (benchmarks/data/check-faq: FAQs of valgrind, socat and
lsof as plain text, kept for reporting only). Parameters are chosen on one set and reported
on the other. Every question runs through the same pipeline `citeline ask` uses, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, bench_engines, ingest_files
from citeline.answers.citations import Embed, SpanIndex, Verified, Verifier
from citeline.answers.evaluation import (
    EITHER,
    Outcome,
    Question,
    Report,
    evaluate,
    load_questions,
    on_gold,
)
from citeline.answers.passages import Passage
from citeline.answers.prompt import is_not_found
from citeline.answers.streaming import SentenceStream
from citeline.llm.embedders import embedder_for
from citeline.llm.llama import cores
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings

DATA = Path(__file__).parent / "data"
DEBIAN = ROOT.parent / "shared" / "eval" / "debian-faq"
TOOLS = DATA / "tools-faq"
CHECK = DATA / "check-faq"
JUDGE = "qwen2.5-coder-0.5b"


def debian_set(limit: int | None, extra: int | None) -> tuple[list[Path], list[Question]]:
    headings = load_questions(DEBIAN / "questions.jsonl")
    by_id = {i: q for i, q in enumerate(headings)}
    questions = headings[:limit] if limit else headings
    for kind in ("paraphrased", "keyword"):
        for raw in _lines(DATA / f"debian-faq-{kind}.jsonl")[:extra]:
            gold = by_id[raw["id"]] if "gold" not in raw else None
            questions.append(_question(raw, kind, gold))
    questions += load_questions(DATA / "debian-faq-unanswerable.jsonl")[:extra]
    return sorted((DEBIAN / "corpus").glob("*.html")), questions


def tools_set(limit: int | None, extra: int | None) -> tuple[list[Path], list[Question]]:
    return faq_set(TOOLS, limit, extra)


def check_set(limit: int | None, extra: int | None) -> tuple[list[Path], list[Question]]:
    return faq_set(CHECK, limit, extra)


def faq_set(
    folder: Path, limit: int | None, extra: int | None
) -> tuple[list[Path], list[Question]]:
    """A folder's corpus, its questions.jsonl and the kinds of extra.jsonl."""
    headings = load_questions(folder / "questions.jsonl")
    by_id = {i: q for i, q in enumerate(headings)}
    questions = headings[:limit] if limit else headings
    taken: dict[str, int] = {}
    for raw in _lines(folder / "extra.jsonl"):
        kind = raw["kind"]
        taken[kind] = taken.get(kind, 0) + 1
        if extra is None or taken[kind] <= extra:
            questions.append(_question(raw, kind, by_id.get(raw.get("id", -1))))
    return sorted(p for p in (folder / "corpus").iterdir() if p.is_file()), questions


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _question(raw: dict[str, Any], kind: str, gold: Question | None) -> Question:
    if kind == "unanswerable":
        return Question(raw["question"], None, None, False, kind)
    if gold is None:
        return Question(raw["question"], raw.get("gold"), raw.get("page"), True, kind)
    return Question(raw["question"], gold.gold, gold.page, True, kind, gold.heading)


SETS = {"debian": debian_set, "tools": tools_set, "check": check_set}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=sorted(SETS), default="debian")
    parser.add_argument("--limit", type=int, default=30, help="heading questions to run")
    parser.add_argument("--extra", type=int, default=None, help="questions of each other kind")
    parser.add_argument("--threads", type=int, default=cores(), help="llama.cpp threads")
    parser.add_argument("--judge", default=JUDGE, help="bundled model that judges citations")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--rescore",
        type=Path,
        default=None,
        help="score the citations of an earlier results file again, with today's measure",
    )
    parser.add_argument(
        "--reverify",
        type=Path,
        default=None,
        help="check the drafts of an earlier results file again, with today's citation rules",
    )
    args = parser.parse_args()
    if args.rescore is not None:
        print(json.dumps(rescore(args.rescore, args.set), indent=2))
        return
    if args.reverify is not None:
        print(json.dumps(reverify(args.reverify, args.set), indent=2))
        return
    files, questions = SETS[args.set](args.limit, args.extra)
    out = args.out or ROOT / "benchmarks" / "results" / f"answers-{args.set}.json"
    with bench_engines() as (base, endpoints):
        settings = base.model_copy(
            update={"llm_threads": args.threads, "models_dir": ROOT / ".cache" / "models"}
        )
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            kb = resources.knowledge().create("eval", args.set)
            ingest_files(settings, endpoints, kb.id, [(path, path.name) for path in files])
            judge = None
            if args.judge:
                judge = "judge"
                version = NewVersion(name=judge, provider="local", model=args.judge)
                resources.models().registry.add_version(version)
            began = time.perf_counter()
            so_far = Report()

            def progress(number: int, outcome: Outcome) -> None:
                so_far.outcomes.append(outcome)
                write(out, so_far, args, settings.llm_model, None)  # a cut-off run still counts
                print(
                    f"{number:3} {outcome.question.kind[:10]:<10} {outcome.status:<9} "
                    f"{outcome.timings.get('total_ms') or 0:8.0f} ms "
                    f"{sum(outcome.precise_gold)}/{len(outcome.precise_gold)} "
                    f" {outcome.question.question[:60]}",
                    flush=True,
                )

            report = evaluate(resources, "eval", questions, judge=judge, progress=progress)
            elapsed = time.perf_counter() - began
        finally:
            resources.close()
    summary = write(out, report, args, settings.llm_model, elapsed)
    print(json.dumps(summary, indent=2))


def rescore(path: Path, name: str) -> dict[str, Any]:
    """Strict precision of a results file as it was written and as `on_gold` scores it now,
    with every citation whose score changed (no model runs)."""
    _, questions = SETS[name](None, None)
    asked = {q.question: q for q in questions}
    results = json.loads(path.read_text())
    count = then = now = 0
    changed = []
    for row in results["questions"]:
        question = asked.get(row["question"])
        if question is None:
            raise SystemExit(f"{path}: {row['question']!r} is not a question of the {name} set")
        for citation, was in zip(row["citations"], row["precise_gold"], strict=True):
            good = bool(question.gold) and on_gold(
                citation["text"], citation["source"], question.as_mapping()
            )
            count, then, now = count + 1, then + was, now + good
            if good != was:
                changed.append({"question": row["question"], "span": citation["text"], "now": good})
    return {
        "citations": count,
        "strict_precision_written": round(then / count, 3) if count else None,
        "strict_precision_now": round(now / count, 3) if count else None,
        "changed": changed,
    }


def reverify(path: Path, name: str) -> dict[str, Any]:
    """Strict precision, coverage and not-found rate of an earlier run's drafts checked again
    against the passages they were written from, with today's verifier (no model writes; a
    draft that was not_found before its check stays so)."""
    _, questions = SETS[name](None, None)
    asked = {q.question: q for q in questions}
    settings = Settings()
    embed = embedder_for(settings).embed
    results = json.loads(path.read_text())
    then: list[bool] = []
    now: list[bool] = []
    claims = cited = found_then = found_now = answerable = 0
    changed = []
    for row in results["questions"]:
        question = asked[row["question"]]
        if "draft" not in row:
            raise SystemExit(f"{path} holds no drafts: it was written before --reverify existed")
        checked = recheck(row["draft"], row["read"], row["question"], embed, settings)
        spans = [] if checked is None else [c.as_json() for c in checked.citations]
        marks = [
            bool(question.gold) and on_gold(c["text"], c["source"], question.as_mapping())
            for c in spans
        ]
        if question.gold:
            then += row["precise_gold"]
            now += marks
        if question.answerable and question.kind not in EITHER:
            answerable += 1
            found_then += row["status"] == "not_found"
            found_now += not spans
            if checked is not None and spans:  # as the run counts them: answers only
                claims += checked.claims
                cited += sum(bool(s.markers) for s in checked.sentences)
        before = {c["text"] for c in row["citations"]}
        after = {c["text"] for c in spans}
        if before != after:
            changed.append(
                {
                    "question": row["question"],
                    "lost": sorted(before - after),
                    "gained": sorted(after - before),
                    "gold_now": marks,
                }
            )
    return {
        "citations_then": len(then),
        "strict_precision_then": round(sum(then) / len(then), 3) if then else None,
        "citations_now": len(now),
        "strict_precision_now": round(sum(now) / len(now), 3) if now else None,
        "coverage_now": round(cited / claims, 3) if claims else None,
        "not_found_answerable_then": f"{found_then}/{answerable}",
        "not_found_answerable_now": f"{found_now}/{answerable}",
        "changed": changed,
    }


def recheck(
    draft: str, read: list[dict[str, Any]], question: str, embed: Embed, settings: Settings
) -> Verified | None:
    """The draft through the pipeline's own sentence stream and verifier; None for a draft
    that says it found nothing, or that nothing was read for."""
    if not read or not draft or is_not_found(draft):
        return None
    passages = [Passage.from_json(p) for p in read]
    verifier = Verifier(SpanIndex(passages, embed), settings.answer_support_threshold, question)
    stream = SentenceStream(verifier, lambda *_: None, lambda: None)
    stream.add(draft)
    return stream.finish()


def write(
    out: Path, report: Report, args: argparse.Namespace, model: str, elapsed: float | None
) -> dict[str, Any]:
    """The report's figures and answers to `out`; `elapsed` None marks a run still going."""
    summary = report.summary()
    summary["set"] = args.set
    summary["answer_model"] = model
    summary["judge"] = args.judge
    summary["wall_seconds"] = None if elapsed is None else round(elapsed, 1)
    summary["partial"] = elapsed is None
    summary["load_average"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "summary": summary,
                "questions": [
                    {
                        "question": o.question.question,
                        "kind": o.question.kind,
                        "answerable": o.question.answerable,
                        "status": o.status,
                        "answer": o.answer,
                        "citations": o.citations,
                        "precise": o.precise,
                        "precise_gold": o.precise_gold,
                        "timings": o.timings,
                        "usage": o.usage,
                        "draft": o.draft,
                        "read": o.read,
                    }
                    for o in report.outcomes
                ],
            },
            indent=2,
        )
    )
    return summary


if __name__ == "__main__":
    main()
