"""Sentences with their offsets, and the content words that lexical support is measured on."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace, or at a line break; list items and code lines are their own units.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-./+]*[a-z0-9]|[a-z0-9]")
MARKERS = re.compile(r"\s*\[(?:\d+(?:\s*[,;\u2013-]\s*\d+)*)\]")

_STOPWORDS_TEXT = """a about above after again against all am an and any are as at be because been
    before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself also may
    might must shall use used using one ones get gets via etc"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@dataclass(frozen=True)
class Segment:
    text: str
    start: int
    end: int


def sentences(text: str) -> list[Segment]:
    """Non-empty sentences of `text` with their [start, end) offsets, whitespace trimmed."""
    out = []
    position = 0
    for boundary in [*_BOUNDARY.finditer(text), None]:
        stop = boundary.start() if boundary else len(text)
        piece = text[position:stop]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            start = position + lead
            out.append(Segment(stripped, start, start + len(stripped)))
        if boundary is not None:
            position = boundary.end()
    return out


def stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def strip_markers(text: str) -> str:
    return MARKERS.sub("", text)


def marker_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    for match in MARKERS.finditer(text):
        numbers.extend(int(n) for n in re.findall(r"\d+", match.group()))
    return numbers
