"""Markdown (CommonMark, GitHub-flavoured safe): markers `[\\[1\\]](#ref-1)` link to an HTML
anchor on the reference entry, which CommonMark renderers (GitHub, markdown-it) keep.

All report text is backslash-escaped, so it renders as the same plain text: it can open no
heading, list, link, image, HTML tag or entity.
"""

from __future__ import annotations

import re

from citeline.reports.document import Paragraph, Reference, ReportDocument
from citeline.reports.export.text import (
    REFERENCES,
    SUMMARY,
    clean,
    metadata,
    page_label,
    paragraph_runs,
    safe_url,
)

# Backslash-escaping ASCII punctuation is always legal in CommonMark, so over-escaping is
# harmless: these are every character that can start inline syntax here (GFM's tables,
# strikethrough and math included) plus `#` (an ATX heading's closing sequence).
_INLINE = re.compile(r"([\\`*_\[\]<>&|~!#$])")
# Characters that open a block only at the start of a line: headings, quotes, lists, rules.
_BLOCK_START = re.compile(r"^([>+=-]|\d+[.)])")


def render_markdown(document: ReportDocument) -> bytes:
    lines = [f"# {_inline(document.title)}", ""]
    lines += [f"- {label}: {_inline(value)}" for label, value in metadata(document)]
    lines.append("")
    if document.summary:
        lines += [f"## {SUMMARY}", ""]
        lines += _paragraphs(document.summary)
    for section in document.sections:
        lines += [f"## {_inline(section.title)}", ""]
        lines += _paragraphs(section.paragraphs)
    lines += [f"## {REFERENCES}", ""]
    lines += [_entry(reference) for reference in document.references]
    return ("\n".join(lines) + "\n").encode()


def _paragraphs(paragraphs: tuple[Paragraph, ...]) -> list[str]:
    out: list[str] = []
    for paragraph in paragraphs:
        pieces = [
            _escape(run) if isinstance(run, str) else f"[\\[{run}\\]](#ref-{run})"
            for run in paragraph_runs(paragraph)
        ]
        if pieces:
            out += [_BLOCK_START.sub(lambda m: f"{m[0][:-1]}\\{m[0][-1]}", "".join(pieces)), ""]
    return out


def _entry(reference: Reference) -> str:
    k = reference.number
    url = safe_url(reference.source)
    source = f"<{url}>" if url is not None else _inline(reference.source)
    where = ", ".join(part for part in (source, page_label(reference)) if part)
    # `id` for markdown-it and browsers, `name` as well for renderers that rewrite ids.
    anchor = f'<a id="ref-{k}" name="ref-{k}"></a>'
    title = _inline(reference.document_title)
    return f"{k}. {anchor}{title} — {where}: “{_inline(reference.quote)}”"


def _inline(text: str) -> str:
    return _escape(clean(text))


def _escape(text: str) -> str:
    return _INLINE.sub(r"\\\1", text)
