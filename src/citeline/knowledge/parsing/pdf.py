"""PDF text layers through pypdfium2, page by page, with page numbers kept."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from citeline.knowledge.parsing.types import BlockKind, InvalidDocument, ParsedDocument, TextBuilder

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def parse_pdf(data: bytes) -> ParsedDocument:
    if not data:
        raise InvalidDocument("the file is empty")
    if not data.lstrip()[:5] == b"%PDF-":
        raise InvalidDocument("not a PDF file (no %PDF header)")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise InvalidDocument(
                "the PDF is encrypted with a password; upload an unlocked copy"
            ) from None
        raise InvalidDocument(f"the PDF is corrupt or truncated ({exc})") from None
    builder = TextBuilder()
    page_starts: list[int] = []
    try:
        if len(pdf) == 0:
            raise InvalidDocument("the PDF has no pages")
        for number, page in enumerate(pdf, start=1):
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
            finally:
                textpage.close()
                page.close()
            page_starts.append(builder.length + (len(builder.separator) if builder.parts else 0))
            for paragraph in _PARAGRAPH_BREAK.split(text):
                builder.add(BlockKind.paragraph, paragraph, page=number)
    finally:
        pdf.close()
    if not builder.blocks:
        raise InvalidDocument(
            "the PDF has no text layer (scanned pages?); Citeline does not run OCR"
        )
    return builder.build(page_starts=page_starts)
