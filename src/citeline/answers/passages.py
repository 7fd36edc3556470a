"""Choosing and packing the passages a model reads, within a token budget.

On a CPU the prompt, not the reply, dominates latency, so the context is kept small: the best
passages first, overlapping spans of one document merged away, until the budget is spent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from citeline.knowledge import Hit


@dataclass(frozen=True)
class Passage:
    number: int  # [n] in the prompt, 1-based
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    source: str
    heading_path: tuple[str, ...]
    page: int | None
    start: int  # offsets of `text` in the document's extracted text
    end: int
    text: str
    score: float
    relevance: float | None  # cosine similarity of query and passage, when dense ran

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "chunk_id": str(self.chunk_id),
            "document_id": str(self.document_id),
            "title": self.title,
            "source": self.source,
            "heading_path": list(self.heading_path),
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": self.score,
            "relevance": self.relevance,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Passage:
        """The passage `as_json` wrote (keys it did not write are ignored)."""
        return cls(
            number=int(data["number"]),
            chunk_id=uuid.UUID(data["chunk_id"]),
            document_id=uuid.UUID(data["document_id"]),
            title=data["title"],
            source=data["source"],
            heading_path=tuple(data["heading_path"]),
            page=data["page"],
            start=int(data["start"]),
            end=int(data["end"]),
            text=data["text"],
            score=float(data["score"]),
            relevance=data["relevance"],
        )


def from_hits(hits: Sequence[Hit]) -> list[Passage]:
    passages: list[Passage] = []
    for hit in hits:
        d = hit.details
        if not d:
            continue
        passages.append(
            Passage(
                number=len(passages) + 1,
                chunk_id=hit.chunk_id,
                document_id=d["document_id"],
                title=d.get("title") or d.get("source") or "",
                source=d.get("source") or "",
                heading_path=tuple(d.get("heading_path") or ()),
                page=d.get("page"),
                start=int(d["start"]),
                end=int(d["end"]),
                text=d["text"],
                score=hit.score,
                relevance=hit.scores.get("dense"),
            )
        )
    return passages


def pack(
    passages: Sequence[Passage], budget_tokens: int, count_tokens: Callable[[str], int]
) -> list[Passage]:
    """The best passages that fit the budget, renumbered 1..n; a passage mostly inside one
    already chosen from the same document is skipped."""
    chosen: list[Passage] = []
    used = 0
    for candidate in passages:
        if any(_overlap(candidate, other) > 0.5 for other in chosen):
            continue
        cost = count_tokens(header(candidate)) + count_tokens(candidate.text) + 4
        if used + cost > budget_tokens:
            if chosen:
                continue
            # Even the best passage is over budget: give the model its beginning.
            candidate = _truncate(candidate, budget_tokens, count_tokens)  # noqa: PLW2901
            cost = budget_tokens
        chosen.append(candidate)
        used += cost
    return [_renumber(p, i) for i, p in enumerate(chosen, start=1)]


def header(passage: Passage) -> str:
    where = " > ".join(part for part in (passage.title, *passage.heading_path) if part)
    page = f", page {passage.page}" if passage.page is not None else ""
    return f"[{passage.number}] {where}{page}"


def _overlap(a: Passage, b: Passage) -> float:
    if a.document_id != b.document_id:
        return 0.0
    shared = min(a.end, b.end) - max(a.start, b.start)
    return max(0, shared) / max(1, a.end - a.start)


def _truncate(passage: Passage, budget: int, count_tokens: Callable[[str], int]) -> Passage:
    text = passage.text
    while text and count_tokens(text) > budget * 0.9:
        text = text[: int(len(text) * 0.8)]
    return Passage(**{**passage.__dict__, "text": text, "end": passage.start + len(text)})


def _renumber(passage: Passage, number: int) -> Passage:
    return Passage(**{**passage.__dict__, "number": number})
