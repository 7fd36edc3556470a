"""Plain text and Markdown: the file's own text is the extracted text; blocks point into it."""

from __future__ import annotations

import re

from citeline.knowledge.parsing.outline import outline
from citeline.knowledge.parsing.types import Block, BlockKind, InvalidDocument, ParsedDocument

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_LIST = re.compile(r"^\s{0,3}([-*+]|\d{1,9}[.)])\s+")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def decode(data: bytes) -> str:
    if not data.strip():
        raise InvalidDocument("the file is empty")
    if b"\x00" in data[:8192]:
        raise InvalidDocument("the file contains binary data, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDocument(
            f"the text is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "convert it to UTF-8 and upload it again"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_text(data: bytes) -> ParsedDocument:
    text = decode(data)
    blocks = outline(text)
    if not blocks:
        raise InvalidDocument("the document contains no text")
    return ParsedDocument(text, blocks, title=_first_line(text))


def parse_markdown(data: bytes) -> ParsedDocument:  # noqa: PLR0915 - one pass over the lines
    text = decode(data)
    blocks: list[Block] = []
    lines = text.split("\n")
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    index = 0
    paragraph_start: int | None = None

    def close_paragraph(end_line: int) -> None:
        nonlocal paragraph_start
        if paragraph_start is not None:
            end = offsets[end_line - 1] + len(lines[end_line - 1])
            blocks.extend(
                Block(BlockKind.paragraph, s, e)
                for s, e in _trimmed(text, offsets[paragraph_start], end)
            )
            paragraph_start = None

    title = None
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            close_paragraph(index)
            fence = _FENCE.match(line).group(1)  # type: ignore[union-attr]
            end = index + 1
            while end < len(lines) and not lines[end].lstrip().startswith(fence):
                end += 1
            last = min(end, len(lines) - 1)
            blocks.append(Block(BlockKind.code, offsets[index], offsets[last] + len(lines[last])))
            index = last + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            close_paragraph(index)
            level = len(heading.group(1))
            start = offsets[index] + heading.start(2)
            blocks.append(Block(BlockKind.heading, start, start + len(heading.group(2)), level))
            title = title or heading.group(2)
        elif not line.strip():
            close_paragraph(index)
        elif _LIST.match(line):
            close_paragraph(index)
            end = index + 1
            while (
                end < len(lines)
                and lines[end].strip()
                and lines[end].startswith((" ", "\t"))
                and not _LIST.match(lines[end])
            ):
                end += 1
            blocks.extend(
                Block(BlockKind.list_item, s, e)
                for s, e in _trimmed(text, offsets[index], offsets[end - 1] + len(lines[end - 1]))
            )
            index = end
            continue
        elif line.lstrip().startswith("|"):
            close_paragraph(index)
            end = index + 1
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            blocks.append(
                Block(BlockKind.table, offsets[index], offsets[end - 1] + len(lines[end - 1]))
            )
            index = end
            continue
        elif paragraph_start is None:
            paragraph_start = index
        index += 1
    close_paragraph(len(lines))
    if not any(text[b.start : b.end].strip() for b in blocks):
        raise InvalidDocument("the document contains no text")
    return ParsedDocument(text, blocks, title=title or _first_line(text))


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    segment = text[start:end]
    stripped = segment.strip()
    if not stripped:
        return []
    lead = len(segment) - len(segment.lstrip())
    return [(start + lead, start + lead + len(stripped))]


def _first_line(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            return line.strip().lstrip("#").strip()[:200]
    return None
