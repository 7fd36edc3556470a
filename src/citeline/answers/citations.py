"""Citations the system verifies rather than trusts.

Each claim sentence of a draft answer is matched against every sentence (and pair of adjacent
sentences) of the passages the model read, by embedding similarity and by how many of the
claim's content words the span contains. The best span above the threshold becomes the
sentence's citation, with its exact offsets in the document; the model's own `[n]` markers only
break near-ties. A claim no span supports keeps no marker and is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from citeline.answers.passages import Passage
from citeline.answers.text import (
    Segment,
    content_words,
    marker_numbers,
    markers_before_stop,
    sentences,
    strip_markers,
    with_markers,
)

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]

SEMANTIC_WEIGHT = 0.5
MODEL_MARKER_BONUS = 0.05
LONGER_SPAN_MARGIN = 0.05
MIN_CLAIM_WORDS = 3
REPEAT_SIMILARITY = 0.9  # cosine of two claims' embeddings
REPEAT_WORDS = 0.8  # share of a claim's content words an earlier claim already has
_SOURCES = r"(?:passages?|context|documents?|sources?|texts?|excerpts?|documentation)"
_FRAME = re.compile(
    rf"^(?:(?:according to|as (?:stated|described|explained|mentioned) in) (?:the )?{_SOURCES}"
    rf"(?: \[\d+\])*,\s*|(?:the |these |this )?{_SOURCES}(?: \[\d+\])* (?:explains?|says?|"
    r"states?|mentions?|notes?|describes?|shows?|indicates?|suggests?|confirms?) that\s+)",
    re.IGNORECASE,
)
_META = re.compile(
    r"^(?:the |these |this |none of the |no )?(?:provided |given )?(?:passages?|context|excerpts?)"
    r"\b|^(?:i|we) (?:could|can)(?:not|n't) ",
    re.IGNORECASE,
)
_NOT_A_CLAIM = re.compile(
    r"^(i hope|let me know|feel free|here (is|are)|in summary|to summari[sz]e|"
    r"based on the (passages|context|information)[^.]*[:,]?$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Span:
    passage: Passage
    start: int  # offsets within the passage text
    end: int

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


@dataclass
class Citation:
    marker: int
    span: Span
    support: float

    def as_json(self) -> dict[str, Any]:
        passage = self.span.passage
        return {
            "marker": self.marker,
            "passage": passage.number,
            "chunk_id": str(passage.chunk_id),
            "document_id": str(passage.document_id),
            "title": passage.title,
            "source": passage.source,
            "page": passage.page,
            "start": passage.start + self.span.start,
            "end": passage.start + self.span.end,
            "text": self.span.text,
            "support": round(self.support, 4),
        }


@dataclass
class SentenceSupport:
    text: str
    start: int  # offsets in the verified answer
    end: int
    claim: bool
    markers: list[int] = field(default_factory=list)
    support: float | None = None
    model_markers: list[int] = field(default_factory=list)
    dropped: str | None = None  # why the answer leaves it out: unsupported, repeated, meta

    @property
    def unsupported(self) -> bool:
        return self.claim and not self.markers

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "claim": self.claim,
            "markers": self.markers,
            "support": None if self.support is None else round(self.support, 4),
            "unsupported": self.unsupported,
            "model_markers": self.model_markers,
            "dropped": self.dropped,
        }


@dataclass
class Verified:
    answer: str
    citations: list[Citation]
    sentences: list[SentenceSupport]  # those in `answer`, with their offsets there
    dropped: list[SentenceSupport] = field(default_factory=list)

    @property
    def claims(self) -> int:
        """Claims drafted, counting the unsupported ones the answer leaves out."""
        return sum(s.claim for s in self.sentences) + sum(
            s.dropped == "unsupported" for s in self.dropped
        )

    @property
    def coverage(self) -> float | None:
        """Share of the drafted claims that a span supports."""
        claims = self.claims
        return None if claims == 0 else sum(bool(s.markers) for s in self.sentences) / claims


def is_claim(sentence: str) -> bool:
    text = sentence.strip()
    if text.endswith(":") or _NOT_A_CLAIM.match(text):
        return False
    return len(content_words(text)) >= MIN_CLAIM_WORDS


def candidate_spans(passages: Sequence[Passage]) -> list[Span]:
    spans = []
    for passage in passages:
        parts = sentences(passage.text)
        for i, part in enumerate(parts):
            spans.append(Span(passage, part.start, part.end))
            if i + 1 < len(parts):
                spans.append(Span(passage, part.start, parts[i + 1].end))
    return spans


def verify(draft: str, passages: Sequence[Passage], embed: Embed, threshold: float) -> Verified:
    """The draft as far as the passages support it: each claim cites its best span; a claim
    no span supports, a claim that repeats an earlier one, and talk about "the passages"
    are left out (and listed in `dropped`)."""
    draft = markers_before_stop(draft)
    segments = sentences(draft)
    cleaned = [_unframed(strip_markers(s.text).strip()) for s in segments]
    claims = [i for i, text in enumerate(cleaned) if text and is_claim(text)]
    spans = candidate_spans(passages)
    best, similar = _best_spans(
        [cleaned[i] for i in claims], [segments[i] for i in claims], spans, embed
    )
    chosen = {i: choice for i, choice in zip(claims, best, strict=True)}
    row_of = {i: row for row, i in enumerate(claims)}

    citations: dict[tuple[int, int, int], Citation] = {}
    kept: list[tuple[int, SentenceSupport]] = []
    dropped: list[SentenceSupport] = []
    kept_rows: list[int] = []
    for i, (segment, text) in enumerate(zip(segments, cleaned, strict=True)):
        if not text:
            continue
        support = SentenceSupport(
            text=text, start=0, end=0, claim=i in chosen, model_markers=marker_numbers(segment.text)
        )
        choice = chosen.get(i)
        if _META.match(text):
            support.dropped = "meta"
        elif choice is not None:
            span, score = choice
            support.support = score
            row = row_of[i]
            if score < threshold:
                support.dropped = "unsupported"
            elif any(_repeats(similar, row, other, cleaned, claims) for other in kept_rows):
                support.dropped = "repeated"
            else:
                key = (span.passage.number, span.start, span.end)
                citation = citations.get(key)
                if citation is None:
                    citation = citations[key] = Citation(len(citations) + 1, span, score)
                citation.support = max(citation.support, score)
                support.markers = [citation.marker]
                kept_rows.append(row)
        if support.dropped:
            dropped.append(support)
        else:
            kept.append((i, support))
    return _assemble(draft, segments, kept, list(citations.values()), dropped)


def _assemble(
    draft: str,
    segments: list[Segment],
    kept: list[tuple[int, SentenceSupport]],
    citations: list[Citation],
    dropped: list[SentenceSupport],
) -> Verified:
    # An introduction ("Run this:") stays only when what it introduces does.
    while kept and not kept[-1][1].claim and kept[-1][1].text.endswith(":"):
        dropped.append(kept.pop()[1])
    out: list[str] = []
    supports: list[SentenceSupport] = []
    length = 0
    previous: int | None = None
    for i, support in kept:
        gap = ""
        if previous is not None:
            between = draft[segments[previous].end : segments[i].start]
            gap = between if previous == i - 1 and between else ("\n" if "\n" in between else " ")
        rendered = with_markers(support.text, support.markers)
        support.start = length + len(gap)
        support.end = support.start + len(rendered)
        support.text = rendered
        out.extend((gap, rendered))
        length = support.end
        supports.append(support)
        previous = i
    return Verified("".join(out), citations, supports, dropped)


def _unframed(text: str) -> str:
    """A claim without the "The passages say that" around it."""
    match = _FRAME.match(text)
    if match is None or len(text) == match.end():
        return text
    rest = text[match.end() :]
    return rest[0].upper() + rest[1:]


def _repeats(
    similar: npt.NDArray[np.float32], row: int, other: int, cleaned: list[str], claims: list[int]
) -> bool:
    if float(similar[row, other]) >= REPEAT_SIMILARITY:
        return True
    words = content_words(cleaned[claims[row]])
    earlier = content_words(cleaned[claims[other]])
    return bool(words) and len(words & earlier) / len(words) >= REPEAT_WORDS


def _best_spans(
    claims: list[str], segments: list[Segment], spans: list[Span], embed: Embed
) -> tuple[list[tuple[Span, float] | None], npt.NDArray[np.float32]]:
    """Each claim's best span with its score, and the claims' similarity to each other."""
    if not claims:
        return [], np.zeros((0, 0), dtype=np.float32)
    vectors = embed([*claims, *(span.text for span in spans)]).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-9)
    similar = vectors[: len(claims)] @ vectors[: len(claims)].T
    if not spans:
        return [None] * len(claims), similar
    semantic = vectors[: len(claims)] @ vectors[len(claims) :].T
    span_words = [content_words(span.text) for span in spans]
    out: list[tuple[Span, float] | None] = []
    for row, (claim, segment) in enumerate(zip(claims, segments, strict=True)):
        words = content_words(claim)
        hinted = set(marker_numbers(segment.text))
        best: tuple[Span, float] | None = None
        for column, span in enumerate(spans):
            lexical = len(words & span_words[column]) / max(1, len(words))
            score = SEMANTIC_WEIGHT * float(semantic[row, column]) + (1 - SEMANTIC_WEIGHT) * lexical
            if span.passage.number in hinted:
                score += MODEL_MARKER_BONUS
            if best is None:
                best = (span, score)
                continue
            # A longer span must earn its length: prefer the single sentence on a near-tie.
            margin = LONGER_SPAN_MARGIN if len(span.text) > len(best[0].text) else 0.0
            if score > best[1] + margin:
                best = (span, score)
        out.append(None if best is None else (best[0], min(best[1], 1.0)))
    return out, similar
