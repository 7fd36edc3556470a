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
from citeline.answers.text import Segment, content_words, marker_numbers, sentences, strip_markers

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]

SEMANTIC_WEIGHT = 0.5
MODEL_MARKER_BONUS = 0.05
LONGER_SPAN_MARGIN = 0.05
MIN_CLAIM_WORDS = 3
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
        }


@dataclass
class Verified:
    answer: str
    citations: list[Citation]
    sentences: list[SentenceSupport]

    @property
    def claims(self) -> int:
        return sum(s.claim for s in self.sentences)

    @property
    def coverage(self) -> float | None:
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
    segments = sentences(draft)
    cleaned = [strip_markers(s.text).strip() for s in segments]
    claims = [i for i, text in enumerate(cleaned) if text and is_claim(text)]
    spans = candidate_spans(passages)
    best = _best_spans([cleaned[i] for i in claims], [segments[i] for i in claims], spans, embed)
    chosen = {i: choice for i, choice in zip(claims, best, strict=True)}

    citations: dict[tuple[int, int, int], Citation] = {}
    out: list[str] = []
    supports: list[SentenceSupport] = []
    cursor = 0
    length = 0
    for i, (segment, text) in enumerate(zip(segments, cleaned, strict=True)):
        if not text:
            continue
        gap = draft[cursor : segment.start] if out else ""
        cursor = segment.end
        out.append(gap)
        length += len(gap)
        support = SentenceSupport(
            text=text,
            start=length,
            end=length,
            claim=i in chosen,
            model_markers=marker_numbers(segment.text),
        )
        choice = chosen.get(i)
        if choice is not None:
            span, score = choice
            support.support = score
            if score >= threshold:
                key = (span.passage.number, span.start, span.end)
                citation = citations.get(key)
                if citation is None:
                    citation = citations[key] = Citation(len(citations) + 1, span, score)
                citation.support = max(citation.support, score)
                support.markers = [citation.marker]
        rendered = _with_markers(text, support.markers)
        out.append(rendered)
        support.text = rendered
        support.end = length + len(rendered)
        length += len(rendered)
        supports.append(support)
    return Verified("".join(out), list(citations.values()), supports)


def _best_spans(
    claims: list[str], segments: list[Segment], spans: list[Span], embed: Embed
) -> list[tuple[Span, float] | None]:
    if not claims or not spans:
        return [None] * len(claims)
    vectors = embed([*claims, *(span.text for span in spans)]).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-9)
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
    return out


def _with_markers(text: str, markers: list[int]) -> str:
    if not markers:
        return text
    tag = "".join(f"[{m}]" for m in markers)
    if text[-1] in ".!?":
        return f"{text[:-1]} {tag}{text[-1]}"
    return f"{text} {tag}"
