"""The in-code model of a finished cited report, from which every export format is rendered.

A report reads as summary paragraphs, then titled sections; each paragraph is a run of
sentences, and each sentence carries the numbers of the references that support it.
References are numbered 1..n in the order they are first cited, and a report lists only the
sources it cites. `validate` enforces that before anything is rendered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from citeline.errors import Conflict

# BCP 47 in the shape HTML's lang and OOXML's w:lang accept: "en", "el", "zh", "zh-Hans-CN".
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class ExportError(Conflict):
    """The report cannot be exported as it stands: its citations or references are inconsistent.

    A `Conflict` (409) rather than `InvalidInput` (422): the request to export is well formed,
    and no change to it can help; the stored report is in a state that forbids exporting
    until it is assembled again. `location` names the offending part of the document
    (`sections[1].paragraphs[0].sentences[2]`, `references[3]`), `citation` the number.
    """

    title = "Report cannot be exported"

    def __init__(self, detail: str, *, location: str, citation: int | None = None) -> None:
        super().__init__(detail)
        self.location = location
        self.citation = citation


@dataclass(frozen=True, slots=True)
class Reference:
    """One cited source: where the quoted span lies in a stored document."""

    number: int
    document_title: str
    source: str  # the file name or URL the document was ingested from
    page: int | None
    start: int  # offsets of `quote` in the document's extracted text
    end: int
    quote: str
    document_id: uuid.UUID
    chunk_id: uuid.UUID
    knowledge_base_id: uuid.UUID | None = None  # where the document is, to open it


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence without markers, and the numbers of the references it cites, in order."""

    text: str
    citations: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Paragraph:
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True, slots=True)
class ReportDocument:
    title: str
    summary: tuple[Paragraph, ...]
    sections: tuple[Section, ...]
    references: tuple[Reference, ...]
    language: str | None  # BCP 47 tag of the report's main language ("en", "el", "zh")
    generated_at: datetime  # timezone-aware
    model: str  # label of the model that wrote it
    knowledge_bases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a sentence sits, for error messages: a path and words a person can follow."""

    path: str
    words: str


def _sentences_in_order(document: ReportDocument) -> Iterator[tuple[_Place, Sentence]]:
    """Every sentence in reading order: the summary, then each section."""
    parts: list[tuple[str, str, tuple[Paragraph, ...]]] = [("summary", "Summary", document.summary)]
    parts += [
        (f"sections[{i}]", f"Section {i + 1} ({_quoted(s.title)})", s.paragraphs)
        for i, s in enumerate(document.sections)
    ]
    for path, words, paragraphs in parts:
        for p, paragraph in enumerate(paragraphs):
            for s, sentence in enumerate(paragraph.sentences):
                place = _Place(
                    path=f"{path}.paragraphs[{p}].sentences[{s}]",
                    words=f"{words}, paragraph {p + 1}, sentence {s + 1} "
                    f"({_quoted(sentence.text)})",
                )
                yield place, sentence


def validate(document: ReportDocument) -> None:
    """Raise `ExportError` naming the first inconsistency: a citation of a missing reference,
    a reference never cited, or numbers that are not 1..n in order of first citation."""
    _check_header(document)
    count = len(document.references)
    for index, ref in enumerate(document.references):
        _check_reference(index, ref, count)
    last = 0  # highest number cited so far; first citations must go 1, 2, 3, ...
    for place, sentence in _sentences_in_order(document):
        if _blank(sentence.text):
            raise ExportError(f"{place.words} is empty", location=place.path)
        seen: set[int] = set()
        for number in sentence.citations:
            if not 1 <= number <= count:
                listed = f"1-{count}" if count else "none"
                raise ExportError(
                    f"{place.words} cites [{number}], which is not in the references "
                    f"(listed: {listed})",
                    location=place.path,
                    citation=number,
                )
            if number in seen:
                raise ExportError(
                    f"{place.words} cites [{number}] twice", location=place.path, citation=number
                )
            seen.add(number)
            if number > last + 1:
                raise ExportError(
                    f"{place.words} cites [{number}] before [{last + 1}] was first cited; "
                    "references must be numbered in order of first citation",
                    location=place.path,
                    citation=number,
                )
            last = max(last, number)
    if last < count:
        ref = document.references[last]
        raise ExportError(
            f"reference [{ref.number}] ({_quoted(ref.document_title)}) is never cited; "
            "a report lists only the sources it cites",
            location=f"references[{last}]",
            citation=ref.number,
        )


def _check_header(document: ReportDocument) -> None:
    if _blank(document.title):
        raise ExportError("the report has no title", location="title")
    if document.language is not None and not _LANGUAGE_TAG.fullmatch(document.language):
        raise ExportError(
            f"language {document.language!r} is not a BCP 47 tag such as 'en' or 'zh-Hans'",
            location="language",
        )
    if document.generated_at.utcoffset() is None:
        raise ExportError("generated_at must be timezone-aware", location="generated_at")
    for index, section in enumerate(document.sections):
        if _blank(section.title):
            raise ExportError(f"section {index + 1} has no title", location=f"sections[{index}]")


def _check_reference(index: int, ref: Reference, count: int) -> None:
    location = f"references[{index}]"
    if ref.number != index + 1:
        raise ExportError(
            f"reference {index + 1} of {count} is numbered [{ref.number}]; "
            f"references must be listed as 1-{count} in order",
            location=location,
            citation=ref.number,
        )
    if not ref.quote.strip():
        raise ExportError(
            f"reference [{ref.number}] has an empty quote", location=location, citation=ref.number
        )
    if not 0 <= ref.start < ref.end:
        raise ExportError(
            f"reference [{ref.number}] has offsets {ref.start}-{ref.end}; "
            "they must satisfy 0 <= start < end",
            location=location,
            citation=ref.number,
        )
    if ref.page is not None and ref.page < 1:
        raise ExportError(
            f"reference [{ref.number}] is on page {ref.page}; pages count from 1",
            location=location,
            citation=ref.number,
        )


def _blank(text: str) -> bool:
    """Nothing a reader would see: whitespace, control and format characters only."""
    return not any(c.isprintable() and not c.isspace() for c in text)


def _quoted(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return f'"{flat if len(flat) <= limit else flat[: limit - 1] + "…"}"'


__all__ = [
    "ExportError",
    "Paragraph",
    "Reference",
    "ReportDocument",
    "Section",
    "Sentence",
    "validate",
]
