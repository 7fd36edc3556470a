"""DOCX: python-docx, plus the OXML it has no API for. Each marker is an internal hyperlink
`<w:hyperlink w:anchor="ref_k">[k]</w:hyperlink>` to a bookmark `ref_k` around entry k of the
References; Word and LibreOffice follow it on Ctrl+click.

Bookmarks rather than footnotes: footnotes are numbered per occurrence, so a source cited
five times would be five notes numbered unlike the [k] of the other formats, and a custom
mark showing [k] is drawn twice by LibreOffice. Bookmark names may not contain `-` (Word's
rule), hence `ref_k`.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.enum.section import WD_SECTION_START
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml.ns import qn
from docx.oxml.parser import OxmlElement
from docx.shared import Cm, Pt, RGBColor

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

_LINK_COLOUR = RGBColor(0x1A, 0x4F, 0xA0)


def bookmark_name(number: int) -> str:
    return f"ref_{number}"


def render_docx(document: ReportDocument) -> bytes:
    doc: Any = Document()
    _page_setup(doc)
    _styles(doc, document.language)
    _properties(doc, document)
    doc.add_paragraph(clean(document.title), style="Title")
    for label, value in metadata(document):
        p = doc.add_paragraph()
        p.add_run(f"{label}: ").bold = True
        p.add_run(value)
    doc.add_page_break()
    if document.summary:
        doc.add_heading(SUMMARY, level=1)
        _paragraphs(doc, document.summary)
    for section in document.sections:
        doc.add_heading(clean(section.title), level=1)
        _paragraphs(doc, section.paragraphs)
    doc.add_heading(REFERENCES, level=1).paragraph_format.page_break_before = True
    for reference in document.references:
        _entry(doc, reference)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _paragraphs(doc: Any, paragraphs: tuple[Paragraph, ...]) -> None:
    for paragraph in paragraphs:
        runs = paragraph_runs(paragraph)
        if not runs:
            continue
        p = doc.add_paragraph()
        for run in runs:
            if isinstance(run, str):
                p.add_run(run)
            else:
                _link(p, f"[{run}]", anchor=bookmark_name(run))


def _entry(doc: Any, reference: Reference) -> None:
    p = doc.add_paragraph()
    p.paragraph_format.keep_together = True
    p.add_run(f"[{reference.number}] ")
    p.add_run(clean(reference.document_title)).bold = True
    p.add_run(" — ")
    url = safe_url(reference.source)
    if url is not None:
        _link(p, url, url=url)
    else:
        p.add_run(clean(reference.source))
    page = page_label(reference)
    if page:
        p.add_run(f", {page}")
    p.add_run().add_break()
    p.add_run(f"“{clean(reference.quote)}”").italic = True
    _bookmark(p, bookmark_name(reference.number), reference.number)


def _link(paragraph: Any, text: str, *, anchor: str | None = None, url: str | None = None) -> None:
    link = OxmlElement("w:hyperlink")
    if anchor is not None:
        link.set(qn("w:anchor"), anchor)
    if url is not None:
        rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
        link.set(qn("r:id"), rel)
    link.set(qn("w:history"), "1")
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    style = OxmlElement("w:rStyle")
    style.set(qn("w:val"), "Hyperlink")
    props.append(style)
    run.append(props)
    t = OxmlElement("w:t")
    t.text = text  # lxml escapes it
    t.set(qn("xml:space"), "preserve")
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def _bookmark(paragraph: Any, name: str, bookmark_id: int) -> None:
    """Wrap the paragraph's content in a bookmark."""
    start = OxmlElement("w:bookmarkStart")
    start.set(qn("w:id"), str(bookmark_id))
    start.set(qn("w:name"), name)
    end = OxmlElement("w:bookmarkEnd")
    end.set(qn("w:id"), str(bookmark_id))
    p = paragraph._p
    if p.pPr is not None:
        p.pPr.addnext(start)
    else:
        p.insert(0, start)
    p.append(end)


def _page_setup(doc: Any) -> None:
    section = doc.sections[0]
    section.start_type = WD_SECTION_START.NEW_PAGE
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2)
    section.top_margin, section.bottom_margin = Cm(2.2), Cm(2.4)
    section.different_first_page_header_footer = True  # no number on the title page
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = "1"
    run.append(t)
    field.append(run)
    footer._p.append(field)


def _styles(doc: Any, language: str | None) -> None:
    for name in ("Normal", "Title", "Heading 1"):
        _fonts(doc.styles[name], language)
    doc.styles["Normal"].font.size = Pt(10.5)
    # The default template has no style for links.
    link = doc.styles.add_style("Hyperlink", WD_STYLE_TYPE.CHARACTER)
    link.font.color.rgb = _LINK_COLOUR


def _fonts(style: Any, language: str | None) -> None:
    """Name the fonts outright (the template's theme fonts would win): the Latin font covers
    Greek, and Word draws Han characters with the East Asian one."""
    props = style.element.get_or_add_rPr()
    fonts = props.get_or_add_rFonts()
    for attribute in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
        fonts.attrib.pop(qn(f"w:{attribute}"), None)
    for attribute in ("ascii", "hAnsi", "cs"):
        fonts.set(qn(f"w:{attribute}"), LATIN_FONT)
    fonts.set(qn("w:eastAsia"), CJK_FONT)
    lang = props.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        props.append(lang)
    lang.set(qn("w:val"), language or "en")
    lang.set(qn("w:eastAsia"), language if language and language.startswith("zh") else "zh-CN")


def _properties(doc: Any, document: ReportDocument) -> None:
    props = doc.core_properties
    props.title = clean(document.title)
    props.author = "Citeline"
    props.comments = f"Model: {clean(document.model)}"
    props.keywords = ", ".join(clean(name) for name in document.knowledge_bases)
    props.created = props.modified = document.generated_at
    props.language = document.language or ""
