"""Assembling a report from its sections: sentences in order, the same claim made twice kept
once, citations renumbered by first appearance across the report, only cited sources listed,
and a summary of each section's first sentence (cited, so verified by construction)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citeline.answers import content_words
from citeline.reports.document import (
    Paragraph,
    Reference,
    ReportDocument,
    Section,
    Sentence,
    validate,
)

DUPLICATE_OVERLAP = 0.8  # share of content words two sentences on one span have in common


@dataclass(frozen=True)
class SectionDraft:
    """A section as research left it: sentences with local markers, local citations."""

    title: str
    sentences: Sequence[Mapping[str, Any]]
    citations: Sequence[Mapping[str, Any]]
    passage_chunks: frozenset[str]  # chunk ids the section retrieved


@dataclass(frozen=True)
class Assembled:
    document: ReportDocument
    merged: int  # sentences dropped as repeating an earlier one
    foreign: int  # sentences dropped for citing a passage their section did not retrieve


def assemble(
    title: str,
    drafts: Sequence[SectionDraft],
    *,
    language: str | None,
    generated_at: datetime,
    model: str,
    knowledge_bases: Sequence[str],
) -> Assembled:
    spans: dict[tuple[str, int, int], int] = {}  # (chunk, start, end) -> global number
    references: list[Reference] = []
    said: dict[int, list[set[str]]] = {}  # global number -> content words of sentences on it
    sections: list[Section] = []
    merged = foreign = 0
    for draft in drafts:
        local = {int(c["marker"]): c for c in draft.citations}
        kept: list[Sentence] = []
        for sentence in draft.sentences:
            cited = [local[m] for m in sentence.get("markers", []) if m in local]
            if not cited:
                continue
            if any(str(c["chunk_id"]) not in draft.passage_chunks for c in cited):
                foreign += 1
                continue
            numbers = []
            for citation in cited:
                key = (str(citation["chunk_id"]), int(citation["start"]), int(citation["end"]))
                if key not in spans:
                    spans[key] = len(references) + 1
                    references.append(_reference(spans[key], citation))
                numbers.append(spans[key])
            words = content_words(str(sentence["text"]))
            if _repeats(words, numbers, said):
                merged += 1
                continue
            for number in numbers:
                said.setdefault(number, []).append(words)
            kept.append(Sentence(str(sentence["text"]), tuple(dict.fromkeys(numbers))))
        if kept:
            sections.append(Section(draft.title, (Paragraph(tuple(kept)),)))
    # Numbers in order of first appearance: the summary repeats sections' first sentences,
    # so it comes first and keeps the order the sections give.
    summary = tuple(Paragraph((section.paragraphs[0].sentences[0],)) for section in sections)
    document = _renumbered(
        ReportDocument(
            title=title,
            summary=(Paragraph(tuple(p.sentences[0] for p in summary)),) if summary else (),
            sections=tuple(sections),
            references=tuple(references),
            language=language,
            generated_at=generated_at,
            model=model,
            knowledge_bases=tuple(knowledge_bases),
        )
    )
    validate(document)
    return Assembled(document, merged, foreign)


def _repeats(words: set[str], numbers: Sequence[int], said: Mapping[int, list[set[str]]]) -> bool:
    """A sentence on a span already cited, saying what an earlier sentence on it said."""
    for number in numbers:
        for earlier in said.get(number, []):
            union = words | earlier
            if union and len(words & earlier) / len(union) >= DUPLICATE_OVERLAP:
                return True
    return False


def _renumbered(document: ReportDocument) -> ReportDocument:
    """Citations numbered 1..n by first appearance (summary first), references in that
    order, and only the references cited."""
    order: dict[int, int] = {}
    paragraphs = [*document.summary, *(p for s in document.sections for p in s.paragraphs)]
    for paragraph in paragraphs:
        for sentence in paragraph.sentences:
            for number in sentence.citations:
                order.setdefault(number, len(order) + 1)

    def renumber(paragraph: Paragraph) -> Paragraph:
        return Paragraph(
            tuple(
                Sentence(s.text, tuple(order[n] for n in s.citations)) for s in paragraph.sentences
            )
        )

    by_number = {ref.number: ref for ref in document.references}
    references = tuple(
        dataclasses.replace(by_number[old], number=new)
        for old, new in sorted(order.items(), key=lambda x: x[1])
    )
    return ReportDocument(
        title=document.title,
        summary=tuple(renumber(p) for p in document.summary),
        sections=tuple(
            Section(s.title, tuple(renumber(p) for p in s.paragraphs)) for s in document.sections
        ),
        references=references,
        language=document.language,
        generated_at=document.generated_at,
        model=document.model,
        knowledge_bases=document.knowledge_bases,
    )


def _reference(number: int, citation: Mapping[str, Any]) -> Reference:
    page = citation.get("page")
    return Reference(
        number=number,
        document_title=str(citation.get("title") or citation.get("source") or "document"),
        source=str(citation.get("source") or ""),
        page=int(page) if page is not None else None,
        start=int(citation["start"]),
        end=int(citation["end"]),
        quote=str(citation["text"]),
        document_id=uuid.UUID(str(citation["document_id"])),
        chunk_id=uuid.UUID(str(citation["chunk_id"])),
        knowledge_base_id=_uuid_or_none(citation.get("knowledge_base_id")),
    )


def _uuid_or_none(value: object) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def to_json(document: ReportDocument) -> dict[str, Any]:
    """The document as stored on the report (and returned by the API)."""

    def paragraphs(items: Sequence[Paragraph]) -> list[list[dict[str, Any]]]:
        return [
            [{"text": s.text, "citations": list(s.citations)} for s in p.sentences] for p in items
        ]

    return {
        "title": document.title,
        "summary": paragraphs(document.summary),
        "sections": [
            {"title": s.title, "paragraphs": paragraphs(s.paragraphs)} for s in document.sections
        ],
        "references": [
            {
                "number": r.number,
                "document_title": r.document_title,
                "source": r.source,
                "page": r.page,
                "start": r.start,
                "end": r.end,
                "quote": r.quote,
                "document_id": str(r.document_id),
                "chunk_id": str(r.chunk_id),
                "knowledge_base_id": str(r.knowledge_base_id) if r.knowledge_base_id else None,
            }
            for r in document.references
        ],
        "language": document.language,
        "generated_at": document.generated_at.isoformat(),
        "model": document.model,
        "knowledge_bases": list(document.knowledge_bases),
    }


def from_json(data: Mapping[str, Any]) -> ReportDocument:
    def paragraphs(items: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[Paragraph, ...]:
        return tuple(
            Paragraph(tuple(Sentence(str(s["text"]), tuple(s["citations"])) for s in p))
            for p in items
        )

    return ReportDocument(
        title=str(data["title"]),
        summary=paragraphs(data["summary"]),
        sections=tuple(
            Section(str(s["title"]), paragraphs(s["paragraphs"])) for s in data["sections"]
        ),
        references=tuple(
            Reference(
                number=int(r["number"]),
                document_title=str(r["document_title"]),
                source=str(r["source"]),
                page=r["page"],
                start=int(r["start"]),
                end=int(r["end"]),
                quote=str(r["quote"]),
                document_id=uuid.UUID(str(r["document_id"])),
                chunk_id=uuid.UUID(str(r["chunk_id"])),
                knowledge_base_id=_uuid_or_none(r.get("knowledge_base_id")),
            )
            for r in data["references"]
        ),
        language=data.get("language"),
        generated_at=datetime.fromisoformat(str(data["generated_at"])),
        model=str(data["model"]),
        knowledge_bases=tuple(data.get("knowledge_bases") or ()),
    )
