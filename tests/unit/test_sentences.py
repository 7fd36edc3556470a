"""Claim sentences: split where a reader would, from hard cases seen in real documentation,
and citation markers placed where they break nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citeline.answers.text import markers_before_stop, sentences, strip_markers, with_markers

CASES = json.loads((Path(__file__).parent.parent / "data" / "sentence_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["from"] for c in CASES])
def test_sentences_of_hard_cases(case: dict[str, object]) -> None:
    text = str(case["text"])
    parts = sentences(text)
    assert [p.text for p in parts] == case["sentences"]
    assert all(text[p.start : p.end] == p.text for p in parts)


def test_markers_go_before_the_full_stop_unless_that_breaks_something() -> None:
    assert with_markers("It is free.", [1]) == "It is free [1]."
    assert with_markers("Use `x.copy()`.", [2]) == "Use `x.copy()` [2]."
    assert with_markers("It waits...", [1]) == "It waits [1]..."
    assert with_markers('He said "Stop."', [1]) == 'He said "Stop." [1]'
    assert with_markers("(see the manual.)", [3]) == "(see the manual.) [3]"
    assert with_markers("- an item", [1, 2]) == "- an item [1][2]"
    assert with_markers("```\nf(x)\n```", [1]) == "```\nf(x)\n```\n[1]"
    assert with_markers("Unchanged.", []) == "Unchanged."


def test_markers_are_read_around_code() -> None:
    assert strip_markers("Index with `a[1]` here [2].") == "Index with `a[1]` here."
    assert markers_before_stop("One. [1] Two.[2][3]") == "One [1]. Two [2][3]."
