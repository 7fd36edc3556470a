"""Exports of a cited report: Markdown, HTML, PDF and DOCX, each rendered from the one
`ReportDocument`, each keeping every citation as a numbered link to its reference entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from citeline.errors import CitelineError, InvalidInput
from citeline.reports.document import ExportError, ReportDocument, validate
from citeline.reports.export.docx import render_docx
from citeline.reports.export.html import render_html
from citeline.reports.export.markdown import render_markdown
from citeline.reports.export.text import RenderError


class ExportFormat(StrEnum):
    md = "md"
    html = "html"
    pdf = "pdf"
    docx = "docx"


@dataclass(frozen=True, slots=True)
class FormatInfo:
    format: ExportFormat
    media_type: str
    extension: str  # with its dot, for file names: f"{slug}{info.extension}"


FORMATS: dict[ExportFormat, FormatInfo] = {
    ExportFormat.md: FormatInfo(ExportFormat.md, "text/markdown; charset=utf-8", ".md"),
    ExportFormat.html: FormatInfo(ExportFormat.html, "text/html; charset=utf-8", ".html"),
    ExportFormat.pdf: FormatInfo(ExportFormat.pdf, "application/pdf", ".pdf"),
    ExportFormat.docx: FormatInfo(
        ExportFormat.docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".docx",
    ),
}


def _render_pdf(document: ReportDocument) -> bytes:
    # WeasyPrint takes a second to import: only processes that write PDFs pay for it.
    from citeline.reports.export.pdf import render_pdf

    return render_pdf(document)


_RENDERERS: dict[ExportFormat, Callable[[ReportDocument], bytes]] = {
    ExportFormat.md: render_markdown,
    ExportFormat.html: render_html,
    ExportFormat.pdf: _render_pdf,
    ExportFormat.docx: render_docx,
}


def export_format(name: str) -> ExportFormat:
    """The format called `name` ("pdf"), or `InvalidInput` naming the ones there are."""
    try:
        return ExportFormat(name.strip().lower().removeprefix("."))
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise InvalidInput(
            f"unknown export format {name!r}; choose one of {known}", field="format"
        ) from None


def render(document: ReportDocument, fmt: ExportFormat | str) -> bytes:
    """The report in one format. Raises `ExportError` for an inconsistent report,
    `ConfigurationError` when the machine lacks what the format needs (fonts), and
    `RenderError` naming the format and the cause for any other failure."""
    chosen = fmt if isinstance(fmt, ExportFormat) else export_format(fmt)
    validate(document)
    try:
        return _RENDERERS[chosen](document)
    except CitelineError:
        raise
    except Exception as exc:  # translated, never swallowed: the cause stays chained
        raise RenderError(chosen.value, f"{type(exc).__name__}: {exc}") from exc


__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "FormatInfo",
    "RenderError",
    "export_format",
    "render",
]
