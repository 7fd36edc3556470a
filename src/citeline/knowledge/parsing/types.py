"""What every parser produces: the document's extracted text and its blocks, placed in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from citeline.errors import InvalidInput


class InvalidDocument(InvalidInput):
    """The file cannot be ingested (corrupt, encrypted, empty, unsupported...); says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="file")


class BlockKind(StrEnum):
    heading = "heading"
    paragraph = "paragraph"
    list_item = "list_item"
    code = "code"
    table = "table"


@dataclass(frozen=True)
class Block:
    """A structural unit whose text is exactly `document.text[start:end]`."""

    kind: BlockKind
    start: int
    end: int
    level: int = 0  # heading level (1 = top)
    page: int | None = None  # 1-based, PDFs only


@dataclass
class ParsedDocument:
    text: str
    blocks: list[Block]
    title: str | None = None
    page_starts: list[int] | None = None

    def block_text(self, block: Block) -> str:
        return self.text[block.start : block.end]


@dataclass
class TextBuilder:
    """Builds the extracted text block by block, recording each block's offsets."""

    separator: str = "\n\n"
    parts: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    length: int = 0

    def add(self, kind: BlockKind, text: str, *, level: int = 0, page: int | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append(self.separator)
            self.length += len(self.separator)
        self.blocks.append(Block(kind, self.length, self.length + len(text), level, page))
        self.parts.append(text)
        self.length += len(text)

    def build(
        self, *, title: str | None = None, page_starts: list[int] | None = None
    ) -> ParsedDocument:
        text = "".join(self.parts)
        if not text.strip():
            raise InvalidDocument("the document contains no text")
        return ParsedDocument(text, self.blocks, title, page_starts)
