"""Report exports, checked on the real outputs: every citation marker links to an existing
reference entry (Markdown through markdown-it, HTML through lxml, PDF link annotations
through pypdf, DOCX hyperlinks against its bookmarks), Greek and Chinese stay legible (PDF:
the embedded fonts' own cmaps cover every character), hostile text stays inert, and an
inconsistent report is refused with an error naming the sentence and the number."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, cast

import lxml.etree
import lxml.html
import pytest
from fontTools.ttLib import TTFont
from markdown_it import MarkdownIt
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from citeline.errors import Conflict, InvalidInput
from citeline.reports.document import (
    ExportError,
    Paragraph,
    ReportDocument,
    Section,
    Sentence,
    validate,
)
from citeline.reports.export import FORMATS, ExportFormat, RenderError, export_format, render
from citeline.reports.export.pdf import html_to_pdf, missing_fonts
from citeline.reports.export.text import clean
from tests.conftest import ROOT
from tests.report_samples import (
    CHINESE,
    GREEK,
    HOSTILE,
    chinese_report,
    english_report,
    greek_report,
    hostile_report,
)

DEJAVU_SANS = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # fonts-dejavu-core
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W}
SAMPLES = {
    "en": lambda: english_report(sections=2, sources=12),
    "el": greek_report,
    "zh": chinese_report,
    "hostile": hostile_report,
}


@cache
def rendered(sample: str, fmt: ExportFormat) -> bytes:
    return render(SAMPLES[sample](), fmt)


def citations(document: ReportDocument) -> list[int]:
    """Every citation number in reading order."""
    return [n for sentence in sentences(document) for n in sentence.citations]


def sentences(document: ReportDocument) -> Iterator[Sentence]:
    for paragraph in document.summary:
        yield from paragraph.sentences
    for section in document.sections:
        for paragraph in section.paragraphs:
            yield from paragraph.sentences


def report_texts(document: ReportDocument) -> list[str]:
    """Every piece of report text, as each format must show it."""
    texts = [document.title, document.model, *document.knowledge_bases]
    texts += [s.title for s in document.sections] + [s.text for s in sentences(document)]
    for ref in document.references:
        texts += [ref.document_title, ref.source, ref.quote]
    return [clean(t) for t in texts]


def flat(text: str) -> str:
    return " ".join(text.split())


def contains_sentence(haystack: str, sentence: str) -> bool:
    """The sentence is there, its closing punctuation possibly after the markers."""
    body = sentence[:-1] if sentence[-1] in ".。" else sentence
    return body in haystack


# ---------------------------------------------------------------- the model's rules


def replace_sentence(
    document: ReportDocument, section: int, paragraph: int, sentence: int, new: Sentence
) -> ReportDocument:
    old = document.sections[section]
    paragraphs = list(old.paragraphs)
    sentences_ = list(paragraphs[paragraph].sentences)
    sentences_[sentence] = new
    paragraphs[paragraph] = Paragraph(tuple(sentences_))
    sections = list(document.sections)
    sections[section] = Section(old.title, tuple(paragraphs))
    return dataclasses.replace(document, sections=tuple(sections))


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_the_samples_are_valid(sample: str) -> None:
    validate(SAMPLES[sample]())


def test_a_sentence_citing_a_missing_reference_is_refused_by_name() -> None:
    document = greek_report()
    text = document.sections[1].paragraphs[0].sentences[2].text
    broken = replace_sentence(document, 1, 0, 2, Sentence(text, (2, 9)))
    with pytest.raises(ExportError) as caught:
        validate(broken)
    error = caught.value
    assert error.citation == 9
    assert error.location == "sections[1].paragraphs[0].sentences[2]"
    assert "cites [9]" in error.detail and "not in the references" in error.detail
    assert "Section 2" in error.detail and "sentence 3" in error.detail
    assert text[:20] in error.detail
    for fmt in ExportFormat:  # every format refuses it before rendering anything
        with pytest.raises(ExportError, match=r"cites \[9\]"):
            render(broken, fmt)


def test_an_uncited_reference_is_refused() -> None:
    document = greek_report()
    extra = dataclasses.replace(document.references[0], number=6, document_title="Ορφανό")
    with pytest.raises(ExportError, match=r"reference \[6\] \(\"Ορφανό\"\) is never cited") as e:
        validate(dataclasses.replace(document, references=(*document.references, extra)))
    assert e.value.location == "references[5]"


def test_numbers_must_follow_first_citation() -> None:
    document = chinese_report()
    first = document.summary[0].sentences[0]
    swapped = dataclasses.replace(
        document, summary=(Paragraph((Sentence(first.text, (2,)), Sentence("好。", (1,)))),)
    )
    with pytest.raises(ExportError, match=r"cites \[2\] before \[1\] was first cited") as e:
        validate(swapped)
    assert e.value.location == "summary.paragraphs[0].sentences[0]"
    misnumbered = (document.references[1], document.references[0], *document.references[2:])
    with pytest.raises(ExportError, match=r"reference 1 of 5 is numbered \[2\]"):
        validate(dataclasses.replace(document, references=misnumbered))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"generated_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"language": "el GR"}, "BCP 47"),
        ({"title": "  "}, "no title"),
    ],
)
def test_header_mistakes_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportError, match=message):
        validate(dataclasses.replace(greek_report(), **change))


def test_a_sentence_with_nothing_to_read_is_refused() -> None:
    document = greek_report()
    blank = Sentence("\x00\u200b \x1b", (3,))  # it would vanish, and its citation with it
    with pytest.raises(ExportError, match=r"sentence 1 .* is empty") as caught:
        validate(replace_sentence(document, 0, 0, 0, blank))
    assert caught.value.location == "sections[0].paragraphs[0].sentences[0]"


def test_a_sentence_citing_one_source_twice_is_refused() -> None:
    document = greek_report()
    text = document.sections[0].paragraphs[0].sentences[0].text
    with pytest.raises(ExportError, match=r"cites \[3\] twice"):
        validate(replace_sentence(document, 0, 0, 0, Sentence(text, (3, 3))))


def test_export_error_is_a_conflict_and_unknown_formats_are_the_callers_mistake() -> None:
    assert issubclass(ExportError, Conflict) and ExportError.status == 409
    with pytest.raises(InvalidInput, match="choose one of md, html, pdf, docx") as caught:
        export_format("odt")
    assert caught.value.field == "format"
    assert export_format(".PDF") is ExportFormat.pdf
    assert {info.extension for info in FORMATS.values()} == {".md", ".html", ".pdf", ".docx"}
    assert FORMATS[ExportFormat.docx].media_type.endswith("wordprocessingml.document")


def test_a_failing_renderer_is_an_error_naming_the_format_and_cause() -> None:
    # Year 1 an hour east of UTC is valid, but has no UTC time: the title page cannot say it.
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    document = dataclasses.replace(greek_report(), generated_at=early)
    with pytest.raises(RenderError, match=r"^md export failed: OverflowError") as caught:
        render(document, "md")
    assert isinstance(caught.value.__cause__, OverflowError)
    assert caught.value.fmt == "md"


# ---------------------------------------------------------------- Markdown


def markdown_html(sample: str) -> Any:
    text = rendered(sample, ExportFormat.md).decode()
    # CommonMark plus GFM's tables and strikethrough; html on, as GitHub keeps <a id>.
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return lxml.html.fragment_fromstring(parser.render(text), create_parent="div")


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_markdown_markers_link_to_reference_entries(sample: str) -> None:
    document = SAMPLES[sample]()
    root = markdown_html(sample)
    markers = [a for a in root.iter("a") if a.get("href", "").startswith("#")]
    assert [a.get("href") for a in markers] == [f"#ref-{n}" for n in citations(document)]
    assert [a.text for a in markers] == [f"[{n}]" for n in citations(document)]
    entries = root.findall("ol/li")
    assert len(entries) == len(document.references)
    for number, (entry, ref) in enumerate(zip(entries, document.references, strict=True), 1):
        assert entry[0].tag == "a" and entry[0].get("id") == f"ref-{number}"
        text = flat(entry.text_content())
        assert clean(ref.document_title) in text and clean(ref.quote) in text
        if ref.page is not None:
            assert f"p. {ref.page}" in text


@pytest.mark.parametrize("sample", ["el", "zh", "hostile"])
def test_markdown_text_round_trips(sample: str) -> None:
    shown = flat(markdown_html(sample).text_content())
    for text in report_texts(SAMPLES[sample]()):
        assert contains_sentence(shown, text), text


def test_hostile_markdown_is_inert() -> None:
    root = markdown_html("hostile")
    document = hostile_report()
    assert {el.tag for el in root.iter()} <= {"div", "h1", "h2", "p", "ul", "ol", "li", "a"}
    assert len(root.findall("h1")) == 1
    assert len(root.findall("h2")) == 2 + len(document.sections)  # Summary, References
    assert len(root.findall("ol")) == 1 and len(root.findall("ul")) == 1
    for a in root.iter("a"):
        href = a.get("href")
        assert href is None or re.fullmatch(r"#ref-\d+|https?://\S+", href), href
    assert "javascript:" not in "".join(a.get("href", "") for a in root.iter("a"))


# ---------------------------------------------------------------- HTML


def html_root(sample: str) -> Any:
    return lxml.html.document_fromstring(rendered(sample, ExportFormat.html))


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_html_markers_link_to_reference_entries(sample: str) -> None:
    document = SAMPLES[sample]()
    root = html_root(sample)
    markers = root.xpath('//a[@class="cite"]')
    assert [a.get("href") for a in markers] == [f"#ref-{n}" for n in citations(document)]
    for a in markers:
        target = root.get_element_by_id(a.get("href")[1:])
        assert target.tag == "li" and target.getparent().get("class") == "references"
        assert a.text == f"[{target.get('value')}]"
    ids = root.xpath("//@id")
    assert len(ids) == len(set(ids)), "ids are unique"
    for number, ref in enumerate(document.references, 1):
        entry = root.get_element_by_id(f"ref-{number}")
        assert entry.get("data-chunk-id") == str(ref.chunk_id)
        assert entry.get("data-start") == str(ref.start) and entry.get("data-end") == str(ref.end)
        assert entry.xpath("string(cite)") == clean(ref.document_title)
        assert entry.xpath("string(blockquote)") == clean(ref.quote)


@pytest.mark.parametrize(("sample", "lang"), [("el", "el"), ("zh", "zh")])
def test_html_text_round_trips(sample: str, lang: str) -> None:
    root = html_root(sample)
    assert root.get("lang") == lang
    shown = flat(root.body.text_content())
    for text in report_texts(SAMPLES[sample]()):
        assert contains_sentence(shown, text), text
    for text in GREEK if lang == "el" else CHINESE:
        assert text[:-1] in shown


def test_hostile_html_is_inert() -> None:
    root = html_root("hostile")
    tags = {el.tag for el in root.iter() if isinstance(el.tag, str)}
    assert not tags & {"script", "img", "iframe", "object", "embed", "b", "form", "link"}
    assert [el.tag for el in root.iter("style")] == ["style"]  # ours, in the head
    for el in root.iter():
        for name in el.attrib:
            assert not name.lower().startswith("on"), (el.tag, name)
    for href in root.xpath("//@href"):
        assert re.fullmatch(r"#ref-\d+|https?://\S+", href), href
    csp = root.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'"]
    shown = flat(root.body.text_content())
    for text in HOSTILE:
        assert contains_sentence(shown, clean(text)), text


# ---------------------------------------------------------------- PDF


def pdf_reader(sample: str) -> PdfReader:
    return PdfReader(io.BytesIO(rendered(sample, ExportFormat.pdf)))


def link_annotations(reader: PdfReader) -> Iterator[DictionaryObject]:
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            link = annotation.get_object()
            if link.get("/Subtype") == "/Link":
                yield link


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_pdf_markers_are_links_to_the_reference_entries(sample: str) -> None:
    document = SAMPLES[sample]()
    reader = pdf_reader(sample)
    named = reader.named_destinations
    pages = [flat(page.extract_text()) for page in reader.pages]
    internal = [str(link["/Dest"]) for link in link_annotations(reader) if "/Dest" in link]
    assert sorted(internal) == sorted(f"ref-{n}" for n in citations(document))
    for number, ref in enumerate(document.references, 1):
        page = reader.get_destination_page_number(named[f"ref-{number}"])
        assert page is not None and f"{clean(ref.document_title)} —" in pages[page], number
    for link in link_annotations(reader):
        if "/A" in link:
            action = cast(DictionaryObject, link["/A"].get_object())
            assert re.fullmatch(r"https?://\S+", str(action["/URI"]))


def embedded_codepoints(reader: PdfReader) -> tuple[set[int], set[str]]:
    """What the fonts embedded in the PDF can draw (their own cmaps), and their names."""
    points: set[int] = set()
    names: set[str] = set()
    for page in reader.pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        for reference in cast(DictionaryObject, resources["/Font"].get_object()).values():
            font = cast(DictionaryObject, reference.get_object())
            for part in font.get("/DescendantFonts", [font]):
                descriptor = part.get_object()["/FontDescriptor"].get_object()
                names.add(str(descriptor["/FontName"]))
                stream = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
                assert stream is not None, f"{descriptor['/FontName']} is not embedded"
                points |= set(TTFont(io.BytesIO(stream.get_object().get_data())).getBestCmap())
    return points, names


@pytest.mark.parametrize(("sample", "font"), [("el", "DejaVu-Sans"), ("zh", "WenQuanYi")])
def test_pdf_embeds_subset_fonts_that_draw_every_character(sample: str, font: str) -> None:
    points, names = embedded_codepoints(pdf_reader(sample))
    used = {c for text in report_texts(SAMPLES[sample]()) for c in text if not c.isspace()}
    missing = sorted(c for c in used if ord(c) not in points)
    assert not missing, f"no glyph for {''.join(missing)!r}"
    assert any(font in name for name in names), names
    assert all(re.match(r"[A-Z]{6}\+", name.lstrip("/")) for name in names), names  # subsets
    assert len(rendered(sample, ExportFormat.pdf)) < 200_000


def test_pdf_text_round_trips_and_carries_metadata() -> None:
    reader = pdf_reader("zh")
    text = flat(" ".join(page.extract_text() for page in reader.pages)).replace(" ", "")
    for sentence in CHINESE:
        assert sentence[:-1].replace(" ", "") in text
    assert reader.metadata is not None and reader.metadata.title == "Debian 发行版概述"
    assert "1 / 3" not in reader.pages[0].extract_text()  # no number on the title page
    assert "2 / 3" in reader.pages[1].extract_text()


def test_pdf_rendering_logs_no_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render(greek_report(), ExportFormat.pdf)
    assert not caplog.records, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    "html",
    ['<img src="http://127.0.0.1:9/x.png">', '<link rel=stylesheet href="file:///etc/passwd">'],
)
def test_pdf_fetches_nothing(html: str) -> None:
    with pytest.raises(RenderError, match=r"^pdf export failed: .*refused '(http|file):"):
        html_to_pdf(f"<p>x</p>{html}")


def test_missing_fonts_are_named() -> None:
    assert missing_fonts(["DejaVu Sans", "WenQuanYi Micro Hei", "No Such Family 7"]) == [
        "No Such Family 7"
    ]


@pytest.mark.slow
def test_pdf_export_refuses_to_draw_tofu_without_the_cjk_font(tmp_path: Path) -> None:
    # A real fontconfig that knows only DejaVu, in a fresh process (fontconfig loads once).
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><fontconfig>'
        f"<dir>{Path(DEJAVU_SANS).parent}</dir><cachedir>{tmp_path}</cachedir></fontconfig>"
    )
    script = (
        "from citeline.reports.export import render\n"
        "from tests.report_samples import english_report\n"
        "render(english_report(sections=1), 'pdf')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "FONTCONFIG_FILE": str(config), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "ConfigurationError: pdf export needs the font families WenQuanYi Micro Hei" in (
        done.stderr
    )


# ---------------------------------------------------------------- DOCX


def docx_xml(sample: str, part: str = "word/document.xml") -> Any:
    with zipfile.ZipFile(io.BytesIO(rendered(sample, ExportFormat.docx))) as package:
        return lxml.etree.fromstring(package.read(part))


def paragraph_texts(root: Any) -> list[str]:
    return ["".join(p.xpath(".//w:t/text()", namespaces=NS)) for p in root.iter(f"{{{W}}}p")]


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_docx_hyperlinks_point_at_bookmarks_on_the_entries(sample: str) -> None:
    document = SAMPLES[sample]()
    root = docx_xml(sample)
    anchors = root.xpath("//w:hyperlink/@w:anchor", namespaces=NS)
    assert anchors == [f"ref_{n}" for n in citations(document)]
    texts = root.xpath("//w:hyperlink[@w:anchor]//w:t/text()", namespaces=NS)
    assert texts == [f"[{n}]" for n in citations(document)]
    starts = root.xpath("//w:bookmarkStart", namespaces=NS)
    names = [s.get(f"{{{W}}}name") for s in starts]
    assert set(anchors) <= set(names) and len(names) == len(set(names))
    assert all(re.fullmatch(r"[A-Za-z]\w{0,39}", name) for name in names)
    ends = root.xpath("//w:bookmarkEnd/@w:id", namespaces=NS)
    assert sorted(s.get(f"{{{W}}}id") for s in starts) == sorted(ends)
    for number, ref in enumerate(document.references, 1):
        (start,) = [s for s in starts if s.get(f"{{{W}}}name") == f"ref_{number}"]
        entry = "".join(start.getparent().xpath(".//w:t/text()", namespaces=NS))
        assert entry.startswith(f"[{number}] {clean(ref.document_title)} — ")
        assert f"“{clean(ref.quote)}”" in entry


@pytest.mark.parametrize("sample", ["el", "zh", "hostile"])
def test_docx_text_round_trips(sample: str) -> None:
    shown = flat(" ".join(paragraph_texts(docx_xml(sample))))
    for text in report_texts(SAMPLES[sample]()):
        assert contains_sentence(shown, text), text


def test_docx_names_fonts_for_greek_and_chinese() -> None:
    styles = docx_xml("zh", "word/styles.xml")
    fonts = styles.xpath('//w:style[@w:styleId="Normal"]/w:rPr/w:rFonts', namespaces=NS)[0]
    assert fonts.get(f"{{{W}}}ascii") == "DejaVu Sans"
    assert fonts.get(f"{{{W}}}eastAsia") == "WenQuanYi Micro Hei"
    lang = styles.xpath('//w:style[@w:styleId="Normal"]/w:rPr/w:lang', namespaces=NS)[0]
    assert lang.get(f"{{{W}}}val") == "zh" and lang.get(f"{{{W}}}eastAsia") == "zh"


def test_hostile_docx_is_inert() -> None:
    root = docx_xml("hostile")
    assert not root.xpath("//w:instrText | //w:fldChar | //w:fldSimple", namespaces=NS)
    rels = docx_xml("hostile", "word/_rels/document.xml.rels")
    external = [r.get("Target") for r in rels if r.get("TargetMode") == "External"]
    assert all(re.fullmatch(r"https?://\S+", target) for target in external), external
    assert "javascript:alert(1)" in flat(" ".join(paragraph_texts(root)))  # shown, not linked
