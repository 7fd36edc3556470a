"""Headings found in plain text: excerpts of real FAQs as shipped under /usr/share/doc (zlib,
xz, procps, base-files were the development set; valgrind, lsof and sed the check), and
text that only looks like headings."""

from __future__ import annotations

import pytest

from citeline.knowledge.chunking import chunk_document
from citeline.knowledge.parsing import BlockKind
from citeline.knowledge.parsing.text import parse_text
from citeline.knowledge.parsing.types import InvalidDocument


def headings(text: str) -> list[tuple[int, str]]:
    document = parse_text(text.encode())
    return [
        (block.level, " ".join(document.block_text(block).split()))
        for block in document.blocks
        if block.kind is BlockKind.heading
    ]


def test_numbered_entries_with_indented_answers() -> None:
    text = """                Frequently Asked Questions about zlib


 1. Is zlib Y2K-compliant?

    Yes. zlib doesn't handle dates.

10. I need a Delphi interface to zlib.

    See the contrib/delphi directory in the zlib distribution.

24. The license says that altered source versions must be "plainly marked". So
    what exactly do I need to do to meet that requirement?

    You need to change the ZLIB_VERSION and ZLIB_VERNUM #defines in zlib.h.
"""
    assert headings(text) == [
        (1, "1. Is zlib Y2K-compliant?"),
        (1, "10. I need a Delphi interface to zlib."),
        (
            1,
            '24. The license says that altered source versions must be "plainly marked". '
            "So what exactly do I need to do to meet that requirement?",
        ),
    ]


def test_marked_questions_under_an_underlined_title() -> None:
    text = """
XZ Utils FAQ
============

Q:  What do the letters XZ mean?

A:  Nothing. They are just two letters.


Q:  I have installed xz, but my tar doesn't recognize .tar.xz files.
    How can I extract .tar.xz files?

A:  If your tar doesn't support .tar.xz, pipe it through xz -dc.

Q. I upgraded my system to the testing distribution and now my /etc/issue
says "trixie/sid". Should it not read "trixie" or "testing"?

A. That would be nice, but it is not possible.
"""
    assert headings(text) == [
        (1, "XZ Utils FAQ"),
        (2, "Q: What do the letters XZ mean?"),
        (
            2,
            "Q: I have installed xz, but my tar doesn't recognize .tar.xz files. "
            "How can I extract .tar.xz files?",
        ),
        (
            2,
            "Q. I upgraded my system to the testing distribution and now my /etc/issue says "
            '"trixie/sid". Should it not read "trixie" or "testing"?',
        ),
    ]


def test_questions_alone_with_tab_indented_answers() -> None:
    text = """Why does "ps -aux" complain about a bogus '-'?

\tAccording to the POSIX and UNIX standards, the above command asks to
\tdisplay all processes with a TTY.

Why don't I see SMP (per-CPU) stats in top?

\tYou didn't enable it. Press '?' for built-in help or read the man
\tpage.
"""
    assert headings(text) == [
        (1, "Why does \"ps -aux\" complain about a bogus '-'?"),
        (1, "Why don't I see SMP (per-CPU) stats in top?"),
    ]


def test_framed_sections_and_questions_that_open_their_answer() -> None:
    text = """Valgrind FAQ
Release 3.19.0 11 Apr 2022
~~~~~~~~~~~~~~~~~~~~~~~~~~

------------------------------------------------------------------------
1. Background
------------------------------------------------------------------------

1.1. How do you pronounce "Valgrind"?
The "Val" as in the word "value".

Don't feel bad: almost everyone gets it wrong at first.
------------------------------------------------------------------------

2.2. When building Valgrind, 'make' fails with this:
    /usr/bin/ld: cannot find -lc
    collect2: ld returned 1 exit status

You need to install the glibc-static-devel package.
"""
    document = parse_text(text.encode())
    found = headings(text)
    assert found == [
        (1, "Valgrind FAQ Release 3.19.0 11 Apr 2022"),
        (1, "1. Background"),
        (2, '1.1. How do you pronounce "Valgrind"?'),
        (2, "2.2. When building Valgrind, 'make' fails with this:"),
    ]
    texts = [document.block_text(b) for b in document.blocks]
    # The answer under a question that opens its paragraph, the example after a heading and
    # the text a rule closes stay body text, without the rules.
    assert 'The "Val" as in the word "value".' in texts
    assert "Don't feel bad: almost everyone gets it wrong at first." in texts
    assert any(t.startswith("/usr/bin/ld: cannot find -lc") for t in texts)
    assert not any(t.startswith("---") or t.endswith("---") for t in texts)


def test_section_numbers_give_levels_and_capitals_are_titles() -> None:
    text = """2. Decompression algorithm (inflate)

2.1 Introduction

The key question is how to represent a Huffman code.

1.2.1\tAre there mirror sites?

Yes, several.

DESCRIPTION

The program reads its input.
"""
    assert headings(text) == [
        (1, "2. Decompression algorithm (inflate)"),
        (2, "2.1 Introduction"),
        (3, "1.2.1 Are there mirror sites?"),
        (1, "DESCRIPTION"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        # A numbered list of one-liners is a list.
        "Steps:\n\n1. Run make\n\n2. Run make install\n\n3. Restart the service\n",
        # A numbered sentence whose body is not indented deeper is a list item.
        "1. Run make install.\n\nThen restart the service.\n",
        # A table of contents is one paragraph, not a heading.
        "1.0\tGeneral Concepts\n1.1\tLsof -- what is it?\n1.2\tWhere do I get lsof?\n\nBody.\n",
        # A question inside prose, or ending the document, is not a heading.
        "Why would anyone do this? Because it\nis faster, as the results show.\n\nMore.\n",
        "Some text first.\n\nIs that all?\n",
        # A sentence a rule closes is not an underlined title.
        "Don't feel bad: almost everyone gets it wrong at first.\n-----------\n\nNext.\n",
        # A version number opening a line is not a section number.
        "3.79.1 have this bug, see this link.\n\nTry upgrading.\n",
    ],
)
def test_text_that_only_looks_like_headings(text: str) -> None:
    assert headings(text) == []


def test_blocks_point_into_the_text_and_entries_get_their_own_chunks() -> None:
    text = """11. Can zlib handle .zip archives?

    Not by itself, no.  See the directory contrib/minizip in the zlib
    distribution.

12. Can zlib handle .Z files?

    No, sorry.  You have to spawn an uncompress or gunzip subprocess, or adapt
    the code of uncompress on your own.
"""
    document = parse_text(text.encode())
    for block in document.blocks:
        piece = document.block_text(block)
        assert piece == piece.strip() and piece
    chunks = chunk_document(
        document, max_tokens=200, overlap=32, count=lambda ts: [len(t.split()) for t in ts]
    )
    assert [c.heading_path for c in chunks] == [
        ("11. Can zlib handle .zip archives?",),
        ("12. Can zlib handle .Z files?",),
    ]
    assert "contrib/minizip" in text[chunks[0].start : chunks[0].end]
    assert "uncompress" not in text[chunks[0].start : chunks[0].end]


def test_a_file_of_rules_only_is_refused() -> None:
    with pytest.raises(InvalidDocument, match="no text"):
        parse_text(b"-----------\n\n===========\n")


def test_a_chunk_that_opens_with_two_headings_is_in_the_deeper_section() -> None:
    text = """2. Compiling, installing and configuring
------------------------------------------------------------------------

2.1. When building Valgrind, 'make' dies partway with an assertion
failure, something like this:

    % make: expand.c:489: allocated_variable_append

It's probably a bug in 'make'.
"""
    document = parse_text(text.encode())
    chunks = chunk_document(
        document, max_tokens=200, overlap=32, count=lambda ts: [len(t.split()) for t in ts]
    )
    assert len(chunks) == 1
    assert chunks[0].heading_path == (
        "2. Compiling, installing and configuring",
        "2.1. When building Valgrind, 'make' dies partway with an assertion failure, "
        "something like this:",
    )
    assert text[chunks[0].start :].startswith("2. Compiling")
