"""How far the citation judge can be trusted: on the answers of an `answer_quality` run, how
often it credits a span known to state the claim (a citation on the gold passage) and a span
known not to (a citation taken from another question's answer), asked two ways:

- yes/no: "does the passage support the sentence?";
- paired (`citeline.answers.judge`): pick the cited span over a control span, in both orders.

A judge worth its name credits nearly all of the first kind and nearly none of the second.

    .venv/bin/python -m benchmarks.judge_calibration --results benchmarks/results/answers-tools.json
        [--pairs 40] [--judge qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, bench_engines
from citeline.answers.judge import Judge
from citeline.answers.text import marker_numbers
from citeline.llm.registry import NewVersion
from citeline.resources import Resources

MARKED = re.compile(r"(.*?)((?:\[\d+\])+)", re.DOTALL)


def claims(answer: str) -> dict[int, str]:
    """The sentence each marker closes, from an answer's text."""
    out: dict[int, str] = {}
    for match in MARKED.finditer(answer):
        sentence = match.group(1).strip(" .\n")
        for number in marker_numbers(match.group(2)):
            out[number] = sentence
    return out


@dataclass
class Trial:
    claim: str
    span: str
    control: str
    kind: str  # "supported" or "unrelated"
    yes_no: bool | None = None
    paired: bool | None = None


def pairs(results: dict[str, Any], count: int, seed: int = 17) -> list[Trial]:
    """Claims with a gold span (supported) and the same claims with another question's span."""
    gold: list[tuple[int, str, str]] = []
    for index, question in enumerate(results["questions"]):
        said = claims(question["answer"])
        for citation, on_gold in zip(question["citations"], question["precise_gold"], strict=True):
            claim = said.get(citation["marker"])
            if on_gold and claim:
                gold.append((index, claim, citation["text"]))
    rng = random.Random(seed)
    rng.shuffle(gold)
    chosen = gold[:count]
    out: list[Trial] = []
    for index, claim, span in chosen:
        others = [g for g in gold if g[0] != index]
        if len(others) < 2:
            break
        foreign, control = rng.sample(others, 2)
        out.append(Trial(claim, span, control[2], "supported"))
        out.append(Trial(claim, foreign[2], control[2], "unrelated"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, required=True, help="an answer_quality output")
    parser.add_argument("--pairs", type=int, default=40, help="supported claims to try")
    parser.add_argument("--judge", default="qwen2.5-coder-0.5b", help="bundled judge model")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    trials = pairs(json.loads(args.results.read_text()), args.pairs)
    if not trials:
        raise SystemExit(f"{args.results} holds no cited answer on a gold passage")
    with bench_engines() as (base, endpoints):
        settings = base.model_copy(update={"models_dir": ROOT / ".cache" / "models"})
        resources = Resources.connect(settings, endpoints.database_url, endpoints.redis_url)
        try:
            resources.models().registry.add_version(NewVersion("judge", "local", args.judge))
            judge = Judge(resources.models(), "judge", "benchmark")
            for trial in trials:
                trial.yes_no = judge.says_yes(trial.claim, trial.span)
                trial.paired = judge.supports(trial.claim, trial.span, trial.control)
        finally:
            resources.close()
    summary: dict[str, Any] = {"judge": args.judge, "results": str(args.results)}
    for kind in ("supported", "unrelated"):
        mine = [t for t in trials if t.kind == kind]
        summary[kind] = len(mine)
        summary[f"{kind}_credited_yes_no"] = round(sum(bool(t.yes_no) for t in mine) / len(mine), 3)
        summary[f"{kind}_credited_paired"] = round(sum(bool(t.paired) for t in mine) / len(mine), 3)
    print(json.dumps(summary, indent=2))
    out = args.out or ROOT / "benchmarks" / "results" / "judge-calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"summary": summary, "trials": [asdict(t) for t in trials]}, indent=2)
    )


if __name__ == "__main__":
    main()
