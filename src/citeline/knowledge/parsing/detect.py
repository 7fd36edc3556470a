"""Choose the parser by file name, check the content agrees, and parse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from citeline.knowledge.parsing.html import parse_html
from citeline.knowledge.parsing.office import parse_docx
from citeline.knowledge.parsing.pdf import parse_pdf
from citeline.knowledge.parsing.text import parse_markdown, parse_text
from citeline.knowledge.parsing.types import InvalidDocument, ParsedDocument

_FORMATS: dict[str, tuple[str, Callable[[bytes], ParsedDocument]]] = {
    ".pdf": ("application/pdf", parse_pdf),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        parse_docx,
    ),
    ".html": ("text/html", parse_html),
    ".htm": ("text/html", parse_html),
    ".xhtml": ("text/html", parse_html),
    ".md": ("text/markdown", parse_markdown),
    ".markdown": ("text/markdown", parse_markdown),
    ".txt": ("text/plain", parse_text),
    ".text": ("text/plain", parse_text),
}
SUPPORTED_SUFFIXES = tuple(_FORMATS)


def media_type_for(filename: str) -> str:
    """The media type Citeline will parse `filename` as; InvalidDocument if unsupported."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in _FORMATS:
        shown = suffix or "(no extension)"
        raise InvalidDocument(
            f"unsupported file type {shown}; supported: PDF, DOCX, HTML, Markdown and plain "
            f"text ({', '.join(SUPPORTED_SUFFIXES)})"
        )
    return _FORMATS[suffix][0]


def parse(filename: str, data: bytes) -> ParsedDocument:
    media_type_for(filename)
    return _FORMATS[PurePath(filename).suffix.lower()][1](data)
