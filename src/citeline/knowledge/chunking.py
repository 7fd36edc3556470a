"""Structure-aware chunking: sections never share a chunk, blocks stay whole when they fit,
long blocks split at sentences (then words), sizes in the embedding model's tokens, with overlap.
Every chunk is a contiguous span `text[start:end]` of the document's extracted text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from citeline.knowledge.parsing import BlockKind, ParsedDocument

TokenCounter = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSpan:
    ordinal: int
    start: int
    end: int
    heading_path: tuple[str, ...]
    page: int | None
    token_count: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    path: tuple[str, ...]
    page: int | None
    heading: bool


def chunk_document(
    document: ParsedDocument, *, max_tokens: int, overlap: int, count: TokenCounter
) -> list[ChunkSpan]:
    if max_tokens < 16:
        raise ValueError("chunks need at least 16 tokens")
    if not 0 <= overlap < max_tokens // 2:
        raise ValueError("overlap must be under half the chunk size")
    units = _units(document, max_tokens, count)
    chunks: list[ChunkSpan] = []
    current: list[_Unit] = []

    def flush() -> None:
        if current:
            first, last = current[0], current[-1]
            # The section its text belongs to: a chunk that opens with a chapter's title and
            # then its first section's ("2. Compiling" then "2.1. When building ...") is in
            # that section.
            body = next((u for u in current if not u.heading), last)
            chunks.append(
                ChunkSpan(
                    len(chunks),
                    first.start,
                    last.end,
                    body.path,
                    first.page,
                    sum(u.tokens for u in current),
                )
            )

    for unit in units:
        has_body = any(not u.heading for u in current)
        if unit.heading and has_body:
            flush()
            current = []
        elif current and sum(u.tokens for u in current) + unit.tokens > max_tokens:
            flush()
            current = _tail(current, min(overlap, max_tokens - unit.tokens)) if has_body else []
        current.append(unit)
    flush()
    return chunks


def _tail(units: list[_Unit], budget: int) -> list[_Unit]:
    """The trailing body units of a full chunk that fit in the overlap budget."""
    kept: list[_Unit] = []
    total = 0
    for unit in reversed(units[1:]):
        if unit.heading or total + unit.tokens > budget:
            break
        kept.insert(0, unit)
        total += unit.tokens
    return kept


def _units(document: ParsedDocument, max_tokens: int, count: TokenCounter) -> list[_Unit]:
    text = document.text
    headings: list[tuple[int, str]] = []
    pieces: list[tuple[int, int, tuple[str, ...], int | None, bool]] = []
    for block in document.blocks:
        if block.kind is BlockKind.heading:
            while headings and headings[-1][0] >= block.level:
                headings.pop()
            headings.append((block.level, " ".join(text[block.start : block.end].split())))
            pieces.append((block.start, block.end, tuple(h for _, h in headings), block.page, True))
        else:
            path = tuple(h for _, h in headings)
            pieces.append((block.start, block.end, path, block.page, False))
    sizes = count([text[s:e] for s, e, *_ in pieces])
    units: list[_Unit] = []
    for (start, end, path, page, heading), size in zip(pieces, sizes, strict=True):
        if size <= max_tokens:
            units.append(_Unit(start, end, size, path, page, heading))
        else:
            units.extend(_split(text, start, end, path, page, max_tokens, count))
    return units


def _split(
    text: str,
    start: int,
    end: int,
    path: tuple[str, ...],
    page: int | None,
    max_tokens: int,
    count: TokenCounter,
) -> list[_Unit]:
    """Split one long block at sentence ends, then any still-long sentence into word windows."""
    spans = _spans_between(text, start, end, _SENTENCE_END)
    sizes = count([text[s:e] for s, e in spans])
    units: list[_Unit] = []
    for (s, e), size in zip(spans, sizes, strict=True):
        if size <= max_tokens:
            units.append(_Unit(s, e, size, path, page, False))
            continue
        words = [
            (start_ + m.start(), start_ + m.end())
            for start_ in [s]
            for m in _WORD.finditer(text[s:e])
        ]
        word_sizes = count([text[a:b] for a, b in words])
        window_start, window_tokens = 0, 0
        for index, word_size in enumerate(word_sizes):
            if window_tokens and window_tokens + word_size > max_tokens:
                units.append(
                    _Unit(
                        words[window_start][0],
                        words[index - 1][1],
                        window_tokens,
                        path,
                        page,
                        False,
                    )
                )
                window_start, window_tokens = index, 0
            window_tokens += word_size
        if window_tokens:
            units.append(
                _Unit(
                    words[window_start][0],
                    words[-1][1],
                    min(window_tokens, max_tokens),
                    path,
                    page,
                    False,
                )
            )
    return units


def _spans_between(
    text: str, start: int, end: int, separator: re.Pattern[str]
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    position = start
    for match in separator.finditer(text, start, end):
        if match.start() > position:
            spans.append((position, match.start()))
        position = match.end()
    if position < end:
        spans.append((position, end))
    trimmed = []
    for s, e in spans:
        piece = text[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            trimmed.append((s + lead, s + lead + len(piece.strip())))
    return trimmed
