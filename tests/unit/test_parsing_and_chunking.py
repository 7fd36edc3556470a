"""Parsers and the chunker on documents built in the test: offsets must be exact."""

from __future__ import annotations

from itertools import pairwise

import pytest

from citeline.knowledge.chunking import chunk_document
from citeline.knowledge.parsing import BlockKind, InvalidDocument, parse
from citeline.llm.embedding import count_tokens
from tests.conftest import DEV_CORPUS
from tests.fixtures_docs import docx_bytes, encrypted_pdf_bytes, pdf_bytes, zip_bomb_docx

CORPUS = DEV_CORPUS


def test_markdown_blocks_point_into_the_source() -> None:
    source = "# Title\n\nIntro para\nline two.\n\n## Sec\n\n- one\n- two\n\n```py\ncode\n```\n"
    document = parse("x.md", source.encode())
    assert document.text == source
    kinds = [(b.kind, document.block_text(b)) for b in document.blocks]
    assert kinds == [
        (BlockKind.heading, "Title"),
        (BlockKind.paragraph, "Intro para\nline two."),
        (BlockKind.heading, "Sec"),
        (BlockKind.list_item, "- one"),
        (BlockKind.list_item, "- two"),
        (BlockKind.code, "```py\ncode\n```"),
    ]


def test_html_keeps_headings_and_drops_navigation() -> None:
    html = b"""<html><head><title>T</title></head><body><nav>Home Prev Next</nav>
    <div class="toc">Table of Contents</div><h1>Main</h1><p>Body <b>text</b>.</p>
    <ul><li>first</li><li>second</li></ul><footer>copyright</footer></body></html>"""
    document = parse("page.html", html)
    assert document.text == "Main\n\nBody text.\n\nfirst\n\nsecond"
    assert document.title == "T"
    assert document.blocks[0].kind is BlockKind.heading


def test_html_drops_heading_permalinks() -> None:
    html = """<html><head><meta charset="utf-8"></head><body>
    <h2>Is it executable?<a class="headerlink" href="#exe" title="Link">\u00b6</a></h2>
    <p>Use chmod<a href="#x">\u00b6</a>. See <a href="#sec">section 2</a>.</p>
    <h3>Next<a href="#next">#</a></h3></body></html>"""
    document = parse("faq.html", html.encode())
    assert document.text == "Is it executable?\n\nUse chmod. See section 2.\n\nNext"


def test_pdf_pages_and_docx_styles() -> None:
    pdf = parse("a.pdf", pdf_bytes(["First page.", "Second page."]))
    assert pdf.text == "First page.\n\nSecond page."
    assert [b.page for b in pdf.blocks] == [1, 2]
    assert pdf.page_starts == [0, 13]
    docx = parse("a.docx", docx_bytes([("Heading 1", "Intro"), ("Normal", "Body.")]))
    assert [(b.kind, b.level) for b in docx.blocks] == [
        (BlockKind.heading, 1),
        (BlockKind.paragraph, 0),
    ]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.pdf", b"", "empty"),
        ("a.pdf", b"%PDF-1.4 garbage", "corrupt"),
        ("a.pdf", b"hello", "not a PDF"),
        ("a.pdf", pdf_bytes([""]), "no text layer"),
        ("a.pdf", encrypted_pdf_bytes(), "encrypted with a password"),
        ("a.txt", b"\x00\x01binary", "binary"),
        ("a.txt", "naïve".encode("latin-1"), "not valid UTF-8"),
        ("a.docx", b"not a zip", "not a zip"),
        ("a.docx", zip_bomb_docx(), "zip bomb"),
        ("a.exe", b"MZ", "unsupported file type .exe"),
        ("a.html", b"   ", "empty"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidDocument, match=reason):
        parse(name, data)


def test_chunks_are_exact_spans_within_size_and_sections() -> None:
    total = 0
    for path in sorted(CORPUS.glob("*.html")):
        document = parse(path.name, path.read_bytes())
        chunks = chunk_document(document, max_tokens=120, overlap=20, count=count_tokens)
        total += len(chunks)
        for chunk in chunks:
            span = document.text[chunk.start : chunk.end]
            assert span == span.strip() and span
            assert chunk.token_count <= 120
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert total > 100


def test_long_paragraphs_split_with_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} talks about apt and dpkg." for i in range(60))
    document = parse("long.txt", sentences.encode())
    chunks = chunk_document(document, max_tokens=64, overlap=16, count=count_tokens)
    assert len(chunks) > 5
    for previous, current in pairwise(chunks):
        assert current.start < previous.end  # the overlap repeats the previous chunk's tail
        assert current.end > previous.end


def test_chunker_refuses_bad_sizes() -> None:
    document = parse("a.txt", b"text")
    with pytest.raises(ValueError, match="overlap"):
        chunk_document(document, max_tokens=64, overlap=40, count=count_tokens)
