"""Measuring answers against questions with gold passages: retrieval Hit@k and MRR, citation
precision and coverage, the not-found rate, and where the time goes.

A retrieved passage or a citation counts as on the gold passage when it comes from the gold
page (if the question names one) and shares a run of words with the gold text: eight words,
or all of them for a citation span or a gold text shorter than that. A citation off the gold
passage still counts as precise when the judge model picks its span over a control passage,
in both orders, as the one that states the sentence that cites it (`answers/judge.py`).
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citeline.answers.judge import Judge
from citeline.answers.pipeline import AnswerDeps, AnswerOptions, answer
from citeline.errors import CitelineError, InvalidInput

RUN = 8
TIMINGS = (
    "retrieval_ms",
    "preview_ms",
    "prompt_ms",
    "first_token_ms",
    "first_sentence_ms",
    "generation_ms",
    "verification_ms",
    "total_ms",
)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shingles(text: str, run: int = RUN) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + run]) for i in range(len(tokens) - run + 1)}


def on_gold(text: str, source: str | None, question: Mapping[str, Any]) -> bool:
    page = question.get("page")
    if page and source != page:
        return False
    text = _answer_part(text, question.get("heading"))
    gold = str(question["gold"])
    run = min(RUN, len(words(text)), len(words(gold)))  # "Yes. zlib doesn't handle dates."
    return run > 0 and bool(shingles(text, run) & shingles(gold, run))


def _answer_part(text: str, heading: str | None) -> str:
    """A span without the question it opens with, when that question is the gold entry's own
    heading ("21. Is zlib thread-safe? Yes."), and without an "A:" label: both belong to the
    gold passage but hold none of the gold answer's words. A span that opens with another
    question is left whole, and so stays off the gold passage."""
    if heading and "?" in text:
        asked, rest = text.split("?", 1)
        said, wanted = words(asked), words(heading.split("?", 1)[0])
        lead = said[: len(said) - len(wanted)]
        if wanted and said[len(lead) :] == wanted and all(w.isdigit() or w == "q" for w in lead):
            text = rest
    return _ANSWER_LABEL.sub("", text, count=1)


_ANSWER_LABEL = re.compile(r"^\s*(?:A|Answer)\s*:\s*")

# Kinds of question whose right reply may be an answer or an honest not_found.
EITHER = frozenset({"false_premise", "foreign"})


@dataclass
class Question:
    question: str
    gold: str | None
    page: str | None
    answerable: bool
    kind: str = "heading"  # heading, paraphrased, keyword, foreign, false_premise, unanswerable
    heading: str | None = None  # the gold entry's own heading, when it has one

    @classmethod
    def parse(cls, line: str, number: int) -> Question:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number} is not JSON: {exc}", field="questions") from None
        if not isinstance(raw, dict) or not str(raw.get("question", "")).strip():
            raise InvalidInput(f"line {number} has no question", field="questions")
        answerable = bool(raw.get("answerable", raw.get("gold") is not None))
        kind = str(raw.get("kind") or ("heading" if answerable else "unanswerable"))
        question = str(raw["question"])
        heading = raw.get("heading") or (question if kind == "heading" and answerable else None)
        return cls(question, raw.get("gold"), raw.get("page"), answerable, kind, heading)

    def as_mapping(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "gold": self.gold or "",
            "page": self.page,
            "heading": self.heading,
        }


def load_questions(path: Path, limit: int | None = None) -> list[Question]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [Question.parse(line, i) for i, line in enumerate(lines, start=1)]
    return questions[:limit] if limit else questions


@dataclass
class Outcome:
    question: Question
    status: str
    retrieved_on_gold: list[bool]
    citations: list[dict[str, Any]]
    precise: list[bool]  # on the gold passage, or judged supporting
    precise_gold: list[bool]  # on the gold passage
    claims: int
    cited_claims: int
    timings: dict[str, float | None]
    answer: str
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)  # of the answering model
    draft: str = ""  # the model's unchecked text
    read: list[dict[str, Any]] = field(default_factory=list)  # passages given to the model


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The whole run's figures, and per kind of question."""
        out = self._figures(self.outcomes)
        kinds = sorted({o.question.kind for o in self.outcomes})
        if len(kinds) > 1:
            out["by_kind"] = {
                kind: self._figures([o for o in self.outcomes if o.question.kind == kind])
                for kind in kinds
            }
        return out

    @staticmethod
    def _figures(outcomes: list[Outcome]) -> dict[str, Any]:
        ok = [o for o in outcomes if o.error is None]
        answerable = [o for o in ok if o.question.answerable and o.question.kind not in EITHER]
        unanswerable = [o for o in ok if not o.question.answerable]
        either = [o for o in ok if o.question.kind in EITHER]
        ranked = [o for o in answerable if o.question.gold]
        cited = [o for o in ok if o.question.gold]
        citations = [p for o in cited for p in o.precise]
        claims = sum(o.claims for o in answerable)
        out: dict[str, Any] = {
            "questions": len(outcomes),
            "errors": sum(o.error is not None for o in outcomes),
            "answerable": len(answerable),
            "hit_at_1": _mean([o.retrieved_on_gold[:1] == [True] for o in ranked]),
            "hit_at_5": _mean([any(o.retrieved_on_gold[:5]) for o in ranked]),
            "mrr": _mean([_reciprocal(o.retrieved_on_gold) for o in ranked]),
            "citations": len(citations),
            "citation_precision": _mean(citations),
            "citation_precision_gold_only": _mean([g for o in cited for g in o.precise_gold]),
            "citation_coverage": None
            if claims == 0
            else sum(o.cited_claims for o in answerable) / claims,
            "not_found_rate_answerable": _mean([o.status == "not_found" for o in answerable]),
            "unanswerable": len(unanswerable),
            "not_found_unanswerable": sum(o.status == "not_found" for o in unanswerable),
            "answer_or_not_found": len(either),
            "not_found_either": sum(o.status == "not_found" for o in either),
        }
        for name in ("input_tokens", "cached_tokens"):
            counts = [float(o.usage[name]) for o in outcomes if name in o.usage]
            out[f"{name}_p50"] = _percentile(counts, 50)
        for name in TIMINGS:
            values = [o.timings[name] for o in outcomes if o.timings.get(name) is not None]
            out[f"{name}_p50"] = _percentile(values, 50)
            out[f"{name}_p95"] = _percentile(values, 95)
        return out


def evaluate(
    resources: AnswerDeps,
    knowledge_base: str,
    questions: Sequence[Question],
    *,
    options: AnswerOptions | None = None,
    judge: str | None = None,
    progress: Callable[[int, Outcome], None] | None = None,
) -> Report:
    """Answer every question in this process and score the answers."""
    kb = resources.knowledge().get(knowledge_base)
    report = Report()
    for number, question in enumerate(questions, start=1):
        outcome = _one(resources, kb.id, question, options or AnswerOptions(), judge)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(number, outcome)
    return report


def _one(
    resources: AnswerDeps,
    kb_id: uuid.UUID,
    question: Question,
    options: AnswerOptions,
    judge: str | None,
) -> Outcome:
    retrieved: list[dict[str, Any]] = []

    def emit(type_: str, data: Mapping[str, Any]) -> None:
        if type_ == "retrieval":
            retrieved.extend(data["passages"])

    started = time.perf_counter()
    try:
        result = answer(resources, question.question, kb_id, emit=emit, options=options)
    except CitelineError as exc:  # one failed question is reported, not fatal
        timings: dict[str, float | None] = {"total_ms": (time.perf_counter() - started) * 1000}
        return Outcome(question, "error", [], [], [], [], 0, 0, timings, "", f"{exc}")
    gold = question.as_mapping()
    on = [bool(question.gold) and on_gold(p["text"], p["source"], gold) for p in retrieved]
    citations = result["citations"]
    sentences = result.get("sentences", [])
    precise = []
    precise_gold = []
    for citation in citations:
        good = bool(question.gold) and on_gold(citation["text"], citation["source"], gold)
        precise_gold.append(good)
        if not good and judge is not None:
            claim = next((s["text"] for s in sentences if citation["marker"] in s["markers"]), "")
            control = _control(retrieved, citation)
            good = Judge(resources.models(), judge).supports(claim, citation["text"], control)
        precise.append(good)
    unsupported = [s for s in result.get("dropped", []) if s["dropped"] == "unsupported"]
    claims = sum(1 for s in sentences if s["claim"]) + len(unsupported)
    cited = sum(1 for s in sentences if s["claim"] and s["markers"])
    return Outcome(
        question,
        result["status"],
        on,
        citations,
        precise,
        precise_gold,
        claims,
        cited,
        result["timings"],
        result["answer"],
        usage=result.get("usage") or {},
        draft=result.get("draft", ""),
        read=result.get("passages", []) if "draft" in result else [],
    )


def _control(retrieved: Sequence[Mapping[str, Any]], citation: Mapping[str, Any]) -> str | None:
    """The passage retrieval ranked lowest among those that do not hold the cited span."""
    others = [p["text"] for p in retrieved if citation["text"] not in p["text"]]
    return others[-1] if others else None


def _mean(values: Sequence[bool | float]) -> float | None:
    return None if not values else sum(float(v) for v in values) / len(values)


def _reciprocal(flags: Sequence[bool]) -> float:
    first = next((i for i, f in enumerate(flags) if f), None)
    return 0.0 if first is None else 1.0 / (first + 1)


def _percentile(values: Sequence[float | None], q: int) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    if len(present) == 1:
        return round(present[0], 1)
    return round(statistics.quantiles(present, n=100, method="inclusive")[q - 1], 1)
