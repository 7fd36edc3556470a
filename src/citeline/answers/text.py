"""Sentences with their offsets, and the content words that lexical support is measured on.

Prose is split by nupunkt (Punkt with abbreviation, decimal, ellipsis and URL handling); a
fenced code block and a list item are each one unit, and a split that would leave
a parenthesis, a quotation or an inline code span open is undone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nupunkt

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+\S")
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-./+]*[a-z0-9]|[a-z0-9]")
_MARKER = r"\[(?:\d+(?:\s*[,;\u2013-]\s*\d+)*)\]"
MARKERS = re.compile(r"\s*" + _MARKER)
# Markers the model put after the sentence's full stop belong before it.
_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*" + _MARKER + r")+)(?=\s|$)")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_PAIRS = {"(": ")", "[": "]", "{": "}"}
WRAPPED_LINE = 40  # characters; a shorter line that ends without punctuation is a heading

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
    out: list[Segment] = []
    for start, end, prose in _blocks(text):
        if not prose:
            out.append(_trimmed(text, start, end))
            continue
        pieces: list[tuple[int, int]] = []
        for a, b in nupunkt.sentence_spans(text[start:end]):
            if not text[start + a : start + b].strip():
                continue
            if pieces and _joins_previous(
                text[pieces[-1][0] : pieces[-1][1]], text[start + a : start + b]
            ):
                pieces[-1] = (pieces[-1][0], start + b)
            else:
                pieces.append((start + a, start + b))
        out.extend(_trimmed(text, a, b) for a, b in pieces)
    return [s for s in out if s.text]


def is_code_block(text: str) -> bool:
    return bool(_FENCE.match(text))


def with_markers(text: str, markers: list[int]) -> str:
    """`text` with its citation markers at its end: before a final full stop unless that would
    put them inside a code span, a quotation or a parenthesis; on their own line after a code
    block."""
    if not markers:
        return text
    tag = "".join(f"[{m}]" for m in markers)
    if is_code_block(text):
        return f"{text}\n{tag}"
    body = text.rstrip()
    if body and body[-1] in ".!?" and _balanced(body[:-1]):
        while len(body) > 1 and body[-2] in ".!?" and _balanced(body[:-2]):
            body = body[:-1]  # an ellipsis or "?!" stays together after the marker
        stop = text.rstrip()[len(body) - 1 :]
        return f"{body[:-1].rstrip()} {tag}{stop}"
    return f"{body} {tag}"


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_prose) of each line of `text`, a code block being one block."""
    blocks: list[tuple[int, int, bool]] = []
    fence: tuple[int, str] | None = None
    position = 0
    for line in text.splitlines(keepends=True):
        start, position = position, position + len(line)
        body = line.rstrip("\r\n")
        end = start + len(body)
        opened = _FENCE.match(body)
        if fence is not None:
            if opened and opened.group(1) == fence[1]:
                blocks.append((fence[0], end, False))
                fence = None
            continue
        if opened:
            fence = (start, opened.group(1))
        elif not body.strip():
            continue
        elif _LIST_ITEM.match(body):
            blocks.append((start, end, False))
        elif blocks and blocks[-1][2] and _wrapped(text, blocks[-1][1], start):
            blocks[-1] = (blocks[-1][0], end, True)
        else:
            blocks.append((start, end, True))
    if fence is not None:  # an unclosed fence runs to the end
        blocks.append((fence[0], len(text.rstrip()), False))
    return blocks


def _wrapped(text: str, previous_end: int, start: int) -> bool:
    """Whether a prose line continues the one just before it: that line is long and
    unfinished (a short line without a full stop is a heading)."""
    if text.count("\n", previous_end, start) != 1:
        return False
    last = text[text.rfind("\n", 0, previous_end) + 1 : previous_end].rstrip()
    return len(last) >= WRAPPED_LINE and last[-1] not in ".!?:;"


def _joins_previous(previous: str, piece: str) -> bool:
    """A piece that is only punctuation, or that follows an open bracket, quote or code span."""
    if not any(ch.isalnum() for ch in piece):
        return True
    return not _balanced(previous)


def _balanced(text: str) -> bool:
    text = _CODE_SPAN.sub("", text)
    if text.count("`") % 2 or text.count('"') % 2:
        return False
    if text.count("\u201c") > text.count("\u201d"):
        return False
    return all(text.count(o) <= text.count(c) for o, c in _PAIRS.items())


def _trimmed(text: str, start: int, end: int) -> Segment:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    stripped = piece.strip()
    return Segment(stripped, start + lead, start + lead + len(stripped))


def stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def strip_markers(text: str) -> str:
    """`text` without citation markers; an index inside inline code (`a[1]`) is code, kept."""
    out = []
    position = 0
    for code in _CODE_SPAN.finditer(text):
        out.append(MARKERS.sub("", text[position : code.start()]))
        out.append(code.group())
        position = code.end()
    out.append(MARKERS.sub("", text[position:]))
    return "".join(out)


def markers_before_stop(text: str) -> str:
    """`Claim. [1]` written as `Claim [1].`, so the marker stays with its sentence."""
    return _MARKERS_AFTER_STOP.sub(
        lambda m: " " + "".join(re.findall(_MARKER, m.group(2))) + m.group(1), text
    )


def marker_numbers(text: str) -> list[int]:
    numbers: list[int] = []
    for match in MARKERS.finditer(text):
        numbers.extend(int(n) for n in re.findall(r"\d+", match.group()))
    return numbers
