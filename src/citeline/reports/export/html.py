"""HTML: one self-contained page, also the source of the PDF. Markers are
`<a class="cite" href="#ref-1">[1]</a>`, entries `<li id="ref-1">`.

Every piece of report text goes through `html.escape`; the only URLs written are the
`#ref-k` anchors and http(s) sources. A Content-Security-Policy forbids scripts and any
fetch, should something ever slip through.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib.resources import files

from citeline.reports.document import Paragraph, Reference, ReportDocument
from citeline.reports.export.text import (
    CJK_FONT,
    LATIN_FONT,
    REFERENCES,
    SUMMARY,
    clean,
    metadata,
    page_label,
    paragraph_runs,
    safe_url,
)

_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render_html(document: ReportDocument) -> bytes:
    return to_html(document).encode()


def to_html(document: ReportDocument) -> str:
    lang = f' lang="{_e(document.language)}"' if document.language else ""
    title = _t(document.title)
    out = [
        "<!DOCTYPE html>",
        f"<html{lang}>",
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="Citeline">',
        f'<meta name="dcterms.created" content="{document.generated_at.isoformat()}">',
        f"<title>{title}</title>",
        f"<style>\n{stylesheet()}</style>",
        "</head>",
        "<body>",
        '<header class="title-page">',
        f"<h1>{title}</h1>",
        '<dl class="facts">',
        *(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in metadata(document)),
        "</dl>",
        "</header>",
        "<main>",
    ]
    if document.summary:
        out += ['<section class="summary">', f'<h2 id="summary">{SUMMARY}</h2>']
        out += _paragraphs(document.summary, "s")
        out.append("</section>")
    for index, section in enumerate(document.sections, start=1):
        out += ["<section>", f'<h2 id="section-{index}">{_t(section.title)}</h2>']
        out += _paragraphs(section.paragraphs, str(index))
        out.append("</section>")
    out += [
        "</main>",
        '<section class="references">',
        f'<h2 id="references">{REFERENCES}</h2>',
        '<ol class="references">',
        *(_entry(reference) for reference in document.references),
        "</ol>",
        "</section>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


@cache
def stylesheet() -> str:
    stack = f'"{LATIN_FONT}", "{CJK_FONT}", sans-serif'
    # Margin boxes (page numbers) do not inherit the body's font: name it on @page too.
    fonts = f"@page {{ font-family: {stack}; }}\nbody {{ font-family: {stack}; }}\n"
    return fonts + (files(__package__) / "report.css").read_text(encoding="utf-8")


def _paragraphs(paragraphs: tuple[Paragraph, ...], part: str) -> list[str]:
    out: list[str] = []
    for p, paragraph in enumerate(paragraphs, start=1):
        pieces = [
            _e(run)
            if isinstance(run, str)
            # ids stay unique when a reference is cited more than once
            else f'<a class="cite" href="#ref-{run}" id="cite-{part}-{p}-{i}">[{run}]</a>'
            for i, run in enumerate(paragraph_runs(paragraph))
        ]
        if pieces:
            out.append(f"<p>{''.join(pieces)}</p>")
    return out


def _entry(reference: Reference) -> str:
    k = reference.number
    url = safe_url(reference.source)
    source = f'<a href="{_e(url)}">{_e(url)}</a>' if url is not None else _t(reference.source)
    where = ", ".join(part for part in (source, page_label(reference)) if part)
    data = (
        f'data-document-id="{reference.document_id}" data-chunk-id="{reference.chunk_id}" '
        f'data-start="{reference.start}" data-end="{reference.end}"'
    )
    return (
        f'<li id="ref-{k}" value="{k}" {data}><cite>{_t(reference.document_title)}</cite>'
        f" — {where}<blockquote>{_t(reference.quote)}</blockquote></li>"
    )


def _t(text: str) -> str:
    """Report text: cleaned, then escaped."""
    return _e(clean(text))


def _e(text: str) -> str:
    return escape(text, quote=True)
