"""DOCX (python-docx), checked first for zip bombs."""

from __future__ import annotations

import io
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from citeline.knowledge.parsing.types import BlockKind, InvalidDocument, ParsedDocument, TextBuilder

MAX_UNCOMPRESSED = 512 * 2**20
MAX_RATIO = 200


def check_zip(data: bytes, *, limit: int = MAX_UNCOMPRESSED) -> None:
    """Refuse archives that expand beyond `limit` or at an implausible ratio (zip bombs)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidDocument("not a valid DOCX file (it is not a zip archive)") from None
    with archive:
        entries = archive.infolist()
        total = sum(entry.file_size for entry in entries)
        if total > limit:
            raise InvalidDocument(
                f"the DOCX expands to {total / 2**20:.0f} MiB, over the {limit / 2**20:.0f} MiB "
                "limit (a zip bomb?)"
            )
        compressed = sum(entry.compress_size for entry in entries) or 1
        if total / compressed > MAX_RATIO and total > 10 * 2**20:
            raise InvalidDocument(
                f"the DOCX expands {total / compressed:.0f}-fold when unpacked (a zip bomb?)"
            )
        if "word/document.xml" not in archive.namelist():
            raise InvalidDocument("not a valid DOCX file (word/document.xml is missing)")


def parse_docx(data: bytes) -> ParsedDocument:
    if not data:
        raise InvalidDocument("the file is empty")
    check_zip(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidDocument(f"not a valid DOCX file: {exc}") from None
    builder = TextBuilder()
    title = document.core_properties.title or None
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            style = item.style.name if item.style is not None else ""
            text = item.text
            if style == "Title":
                builder.add(BlockKind.heading, text, level=1)
                title = title or text.strip() or None
            elif style.startswith("Heading ") and style.split()[-1].isdigit():
                builder.add(BlockKind.heading, text, level=int(style.split()[-1]))
            elif style.startswith("List"):
                builder.add(BlockKind.list_item, text)
            else:
                builder.add(BlockKind.paragraph, text)
        elif isinstance(item, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows]
            builder.add(BlockKind.table, "\n".join(r for r in rows if r.strip(" |")))
    return builder.build(title=title)
