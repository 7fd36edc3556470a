"""Headings in plain text, which marks none: an FAQ's questions, numbered section titles,
underlined and framed titles, capitalised man-page sections.

Without them a plain-text FAQ is cut into chunks of several entries each, and an answer is
drawn from the entry beside the one asked about. What counts as a heading, paragraph by
paragraph (paragraphs are separated by blank lines):

- a title underlined with `===`, `---` or `~~~` (Setext), or framed by such rules;
- a question: a paragraph that is only a question, or the question that opens a paragraph
  after a marker ("Q:", "Q.", "1.1."), its answer following on the next line;
- a numbered title ("2.1 Introduction", "10. I need a Delphi interface to zlib.") when its
  body is indented deeper or it has no closing punctuation, and it is not one item of a
  numbered list;
- a short line in capitals ("DESCRIPTION").

Levels follow the numbering ("1." is 1, "2.1" is 2), `=` over `-`; an unnumbered question
sits one level under the title before it. Chosen on the tools FAQs of
`benchmarks/data/tools-faq` (zlib, xz, procps, base-files), checked on other FAQs under
`/usr/share/doc` (`tests/unit/test_outline.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from citeline.knowledge.parsing.types import Block, BlockKind

MAX_HEADING_CHARS = 200
MAX_QUESTION_LINES = 3
MAX_TITLE_WORDS = 12

_RULE = re.compile(r"^[ \t]*([=\-~*_#])\1{2,}[ \t]*$")
_NUMBER = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)\.?[ \t]+\S")
_SECTION_START = re.compile(r"^\d{1,2}(?:\.\d{1,2})+\.?[ \t]+[A-Z\"'`(]")
_QUESTION_MARKER = re.compile(r"^(?:Q|Question)[ \t]*[:.][ \t]*\S", re.IGNORECASE)
_CLOSED = re.compile(r"[.,;:!]$")
_CAPITALS = re.compile(r"^[A-Z][A-Z0-9 /&()'-]{3,58}$")


@dataclass(frozen=True)
class _Line:
    start: int  # of its first visible character
    end: int  # after its last one
    text: str  # from the line's start, indentation included

    @property
    def indent(self) -> int:
        expanded = self.text.expandtabs(8)
        return len(expanded) - len(expanded.lstrip())

    @property
    def rule(self) -> bool:
        return _RULE.match(self.text) is not None


def outline(text: str) -> list[Block]:
    """The blocks of a plain-text document: its paragraphs, and the headings among them."""
    paragraphs = [p for p in _paragraphs(text) if not all(line.rule for line in p)]
    blocks: list[Block] = []
    title_level = 0  # of the last heading that is not a question
    underlines: dict[str, int] = {}  # each style's level, in the order they first appear
    for number, lines in enumerate(paragraphs):
        after = paragraphs[number + 1] if number + 1 < len(paragraphs) else None
        before = paragraphs[number - 1] if number > 0 else None
        heading = _underlined(lines, underlines)
        if heading is None:
            lines = [line for line in lines if not line.rule]  # noqa: PLW2901 - rules drop
            heading = _heading(lines, before, after, title_level)
        if heading is None:
            blocks.append(Block(BlockKind.paragraph, lines[0].start, lines[-1].end))
            continue
        count, level, question = heading
        head = [line for line in lines[:count] if not line.rule]
        blocks.append(Block(BlockKind.heading, head[0].start, head[-1].end, level))
        if not question:
            title_level = level
        rest = [line for line in lines[count:] if not line.rule]
        if rest:
            blocks.append(Block(BlockKind.paragraph, rest[0].start, rest[-1].end))
    return blocks


def _underlined(lines: list[_Line], underlines: dict[str, int]) -> tuple[int, int, bool] | None:
    """A title of one or two lines with a rule under it (and perhaps one over it); as in
    reStructuredText, the first style of rule met is level 1, the next one 2."""
    body = lines[1:] if lines[0].rule else lines
    if not 2 <= len(body) <= 3 or not body[-1].rule or any(line.rule for line in body[:-1]):
        return None
    title = " ".join(line.text.strip() for line in body[:-1])
    if len(title) > MAX_HEADING_CHARS or _CLOSED.search(title):
        return None
    style = ("over" if lines[0].rule else "") + body[-1].text.strip()[0]
    level = underlines.setdefault(style, len(underlines) + 1)
    numbered = _NUMBER.match(title)
    if numbered:
        level = _depth(numbered[1])  # "1. Background" framed by rules
    return len(lines), level, title.endswith("?")


def _heading(
    lines: list[_Line], before: list[_Line] | None, after: list[_Line] | None, title_level: int
) -> tuple[int, int, bool] | None:
    """How many of the paragraph's lines are a heading, its level, and whether it is a
    question; None for a paragraph that is not one."""
    first = lines[0].text.strip()
    numbered = _NUMBER.match(first)
    asked = _question_lines(lines)
    # After a marker a question may open a paragraph; unmarked, it must be all of one.
    alone = asked == len(lines) and after is not None
    if asked and (alone or (asked < len(lines) and (numbered or _QUESTION_MARKER.match(first)))):
        level = _depth(numbered[1]) if numbered else title_level + 1
        return asked, level, True
    if after is None:
        return None
    if numbered and _SECTION_START.match(first):
        # Its own lines, not the deeper-indented example after them.
        count = next((i for i, line in enumerate(lines) if line.indent > lines[0].indent), None)
        head = lines[: count or len(lines)]
        listed = any(_marked(line) for line in head[1:])  # a table of contents
        if len(head) <= MAX_QUESTION_LINES and _chars(head) <= MAX_HEADING_CHARS and not listed:
            return len(head), _depth(numbered[1]), False
    if len(lines) > 1 or len(first) > MAX_HEADING_CHARS:
        return None
    if numbered and not _in_list(numbered[1], before, after):
        deeper = after[0].indent > lines[0].indent
        titled = not _CLOSED.search(first) and len(first.split()) <= MAX_TITLE_WORDS
        if deeper or titled:
            return 1, _depth(numbered[1]), False
    if _CAPITALS.match(first):
        return 1, 1, False
    return None


def _question_lines(lines: list[_Line]) -> int:
    """How many opening lines of the paragraph make one question (0 if they do not)."""
    chars = 0
    for count, line in enumerate(lines[:MAX_QUESTION_LINES], start=1):
        chars += len(line.text.strip())
        if chars > MAX_HEADING_CHARS or (count > 1 and _marked(line)):
            return 0  # too long, or a list of them (a table of contents)
        if line.text.rstrip().endswith("?"):
            return count
    return 0


def _in_list(number: str, before: list[_Line] | None, after: list[_Line]) -> bool:
    """Whether a numbered one-line paragraph is an item of a list of them, numbered alike
    ("2." and "2.1" are a section and its first subsection)."""
    for other in (before, after):
        if other is None or len(other) != 1:
            continue
        numbered = _NUMBER.match(other[0].text.strip())
        if numbered and _depth(numbered[1]) == _depth(number):
            return True
    return False


def _marked(line: _Line) -> bool:
    text = line.text.strip()
    return bool(_NUMBER.match(text) or _QUESTION_MARKER.match(text))


def _chars(lines: list[_Line]) -> int:
    return sum(len(line.text.strip()) for line in lines)


def _depth(number: str) -> int:
    return number.count(".") + 1


def _paragraphs(text: str) -> list[list[_Line]]:
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    position = 0
    for raw in text.split("\n"):
        if raw.strip():
            lead = len(raw) - len(raw.lstrip())
            kept = raw.rstrip()
            current.append(_Line(position + lead, position + len(kept), kept))
        elif current:
            paragraphs.append(current)
            current = []
        position += len(raw) + 1
    if current:
        paragraphs.append(current)
    return paragraphs
