"""Checked text while the model writes: each finished sentence of the draft is verified as
soon as it ends and sent on if the answer keeps it; before that, the best passage's key
sentences, quoted (so verified by construction), as a preview."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from citeline.answers.citations import (
    Citation,
    Embed,
    Span,
    Verified,
    Verifier,
    is_claim,
    normalised,
)
from citeline.answers.passages import Passage
from citeline.answers.prompt import NOT_FOUND
from citeline.answers.text import markers_before_stop, sentences

Emit = Callable[[str, Mapping[str, Any]], object]

PREVIEW_SENTENCES = 2
_ENDS = re.compile(r"[.!?:\n]")


class SentenceStream:
    """Feeds the draft's finished sentences to a verifier and emits a `sentence` event, with
    the citations it introduces, for each sentence the answer keeps."""

    def __init__(self, verifier: Verifier, emit: Emit, on_first: Callable[[], None]) -> None:
        self.verifier = verifier
        self.emit = emit
        self.on_first = on_first
        self.draft = ""
        self._done = 0  # sentences of the draft already checked
        self._end = 0  # where the last checked one ends
        self._cited: set[int] = set()
        self._sent = False
        self.before_send: Callable[[], object] = lambda: None  # e.g. flush the draft's tokens

    def add(self, delta: str) -> None:
        self.draft += delta
        if _ENDS.search(delta):
            self._check(final=False)

    def finish(self) -> Verified:
        self._check(final=True)
        return self.verifier.finish()

    def _check(self, *, final: bool) -> None:
        if NOT_FOUND.startswith(self.draft.strip().upper()[: len(NOT_FOUND)]):
            return  # the model may be saying it found nothing
        text = markers_before_stop(self.draft)
        parts = sentences(text)
        ready = parts if final else parts[:-1]  # the last one may still be growing
        for part in ready[self._done :]:
            for kept in self.verifier.add(part.text, text[self._end : part.start]):
                self._send(kept.as_json())
            self._end = part.end
        self._done = max(self._done, len(ready))

    def _send(self, sentence: dict[str, Any]) -> None:
        new = [m for m in sentence["markers"] if m not in self._cited]
        self._cited.update(new)
        by_marker = {c.marker: c for c in self.verifier.citations.values()}
        if not self._sent:
            self._sent = True
            self.on_first()
        self.before_send()
        self.emit("sentence", {**sentence, "citations": [by_marker[m].as_json() for m in new]})


def preview(question: str, passages: Sequence[Passage], embed: Embed) -> list[dict[str, Any]]:
    """The best passage's sentences closest to the question, in the document's order. Only
    that passage's sentences are embedded, so this comes well before the model's first token."""
    if not passages:
        return []
    best = passages[0]
    spans = [
        Span(best, part.start, part.end)
        for part in sentences(best.text)
        if is_claim(part.text) and _single(part.text)
    ]
    if not spans:
        return []
    vectors = normalised(embed([question, *(span.text for span in spans)]))
    scored = [
        (float(score), span) for score, span in zip(vectors[1:] @ vectors[0], spans, strict=True)
    ]
    chosen = sorted(scored, key=lambda pair: -pair[0])[:PREVIEW_SENTENCES]
    chosen.sort(key=lambda pair: pair[1].start)
    return [
        Citation(number, span, score).as_json()
        for number, (score, span) in enumerate(chosen, start=1)
        if np.isfinite(score)
    ]


def _single(text: str) -> bool:
    return len(sentences(text)) == 1
