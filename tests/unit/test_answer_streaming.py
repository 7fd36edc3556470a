"""Verified sentences stream out while the draft is written, and the preview quotes the best
passage: both with the real embedding model."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from citeline.answers.citations import SpanIndex, Verifier, verify
from citeline.answers.relevance import closest, heading, on_question
from citeline.answers.streaming import SentenceStream, preview
from tests.unit.test_citations import BAKERY, DOC, LIGHTHOUSE, embed, passage

DRAFT = (
    "The lighthouse was built in 1847 by Maren Tolvik [1]. "
    "The moon is made of green cheese and orbits Jupiter. "
    "The bakery opens at six in the morning [2]."
)


def test_each_kept_sentence_is_sent_as_soon_as_the_next_one_starts() -> None:
    index = SpanIndex([LIGHTHOUSE, BAKERY], embed)  # type: ignore[arg-type]
    events: list[tuple[str, dict[str, Any]]] = []
    firsts: list[int] = []
    stream = SentenceStream(
        Verifier(index, 0.5), lambda t, d: events.append((t, dict(d))), lambda: firsts.append(1)
    )
    sent_while_writing = []
    for start in range(0, len(DRAFT), 7):
        stream.add(DRAFT[start : start + 7])
        sent_while_writing.append(len(events))
    verified = stream.finish()
    assert sent_while_writing[-1] == 1  # the first sentence, before the draft ended
    assert [t for t, _ in events] == ["sentence", "sentence"] and firsts == [1]
    first, second = (d for _, d in events)
    assert first["text"] == "The lighthouse was built in 1847 by Maren Tolvik [1]."
    assert [c["marker"] for c in first["citations"]] == [1]
    assert DOC[first["citations"][0]["start"] : first["citations"][0]["end"]].startswith("The")
    assert second["markers"] == [2] and second["citations"][0]["passage"] == 2
    whole = verify(DRAFT, [LIGHTHOUSE, BAKERY], embed, 0.5)  # type: ignore[arg-type]
    assert verified.answer == whole.answer
    assert verified.answer[second["start"] : second["end"]] == second["text"]


def test_a_not_found_draft_sends_no_sentence() -> None:
    index = SpanIndex([LIGHTHOUSE], embed)  # type: ignore[arg-type]
    events: list[str] = []
    stream = SentenceStream(Verifier(index, 0.5), lambda t, d: events.append(t), lambda: None)
    for piece in ("NOT", " FOUND", ".\n"):
        stream.add(piece)
    assert events == []


def test_the_preview_quotes_the_best_passage_sentences_closest_to_the_question() -> None:
    quoted = preview("Who built the lighthouse?", [LIGHTHOUSE, BAKERY], embed)  # type: ignore[arg-type]
    assert 1 <= len(quoted) <= 2
    assert all(q["passage"] == 1 and DOC[q["start"] : q["end"]] == q["text"] for q in quoted)
    assert any("Maren Tolvik" in q["text"] for q in quoted)


def test_only_passages_about_the_question_are_read() -> None:
    candidates = [BAKERY, LIGHTHOUSE]
    chosen = on_question("Who built the lighthouse?", candidates, embed, 0.1, 4)  # type: ignore[arg-type]
    assert chosen.passages == [LIGHTHOUSE] and chosen.set_aside == [BAKERY]
    every = on_question("Who built the lighthouse?", candidates, embed, 2.0, 4)  # type: ignore[arg-type]
    assert every.passages == [LIGHTHOUSE, BAKERY]  # best first
    one = on_question("Who built the lighthouse?", candidates, embed, 2.0, 1)  # type: ignore[arg-type]
    assert one.passages == [LIGHTHOUSE]
    two = on_question("Who built the lighthouse?", candidates, embed, 0.1, 4, 2)  # type: ignore[arg-type]
    assert two.passages == [LIGHTHOUSE, BAKERY]  # a floor of two


def test_a_passage_under_the_heading_asked_is_read_before_one_that_shares_its_words() -> None:
    extended = "Debian has extended support for non-English users: translated manual pages, "
    extended += "documentation and installers in many languages. "
    locales = "The locales package and the task-* packages set up keyboards, fonts and messages."
    doc = extended + locales
    users = dataclasses.replace(
        passage(1, 0, len(extended), doc),
        heading_path=("Debian FAQ", "15.2. Extended support for non-English users"),
    )
    languages = dataclasses.replace(
        passage(2, len(extended), len(doc), doc),
        heading_path=("Debian FAQ", "5.9. How does Debian support non-English languages?"),
    )
    question = "How does Debian support non-English languages?"
    vectors = np.asarray(embed([question, users.text, languages.text]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors[1] @ vectors[0] > vectors[2] @ vectors[0] + 0.1  # the words point elsewhere
    chosen = on_question(question, [users, languages], embed, 0.1, 4)  # type: ignore[arg-type]
    assert chosen.passages == [languages] and chosen.set_aside == [users]
    plain = passage(1, 0, len(doc), "31. Does zlib infringe on any patents?\n\n  No.\n" + doc)
    assert heading(plain) == "31. Does zlib infringe on any patents?"  # no markup: first line


def test_the_preview_passage_is_the_one_whose_stored_vector_is_closest() -> None:
    bakery = dataclasses.replace(BAKERY, relevance=0.31)
    lighthouse = dataclasses.replace(LIGHTHOUSE, relevance=0.74)
    assert closest([bakery, lighthouse]) == lighthouse  # ranked second by the hybrid search
    unscored = [dataclasses.replace(BAKERY, relevance=None), lighthouse]
    assert closest(unscored) == lighthouse
    assert closest([dataclasses.replace(p, relevance=None) for p in unscored]).text == BAKERY.text


def test_an_index_embedded_in_the_background_is_the_same_and_reports_a_failure() -> None:
    now = SpanIndex([LIGHTHOUSE, BAKERY], embed)  # type: ignore[arg-type]
    later = SpanIndex([LIGHTHOUSE, BAKERY], embed, in_background=True)  # type: ignore[arg-type]
    assert now.vectors is not None and later.vectors is not None
    assert np.array_equal(now.vectors, later.vectors)

    def broken(texts: Any) -> Any:
        raise RuntimeError("embedding model is gone")

    failing = SpanIndex([LIGHTHOUSE], broken, in_background=True)
    with pytest.raises(RuntimeError, match="embedding model is gone"):
        Verifier(failing, 0.5).add("The lighthouse was built in 1847 by Maren Tolvik [1].")
    with pytest.raises(RuntimeError, match="embedding model is gone"):
        SpanIndex([LIGHTHOUSE], broken)
