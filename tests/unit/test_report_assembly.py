"""A report's outline checks and its assembly: renumbering, merging, references."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from citeline.errors import InvalidInput
from citeline.reports.assembly import SectionDraft, assemble, from_json, to_json
from citeline.reports.outline import (
    check_titles,
    fallback_questions,
    parse_plan,
    questions_from_text,
)

DOC = uuid.uuid4()
CHUNKS = [str(uuid.uuid4()) for _ in range(4)]


def citation(marker: int, chunk: int, start: int = 0, end: int = 20) -> dict[str, Any]:
    return {
        "marker": marker,
        "chunk_id": CHUNKS[chunk],
        "document_id": str(DOC),
        "title": "Handbook",
        "source": "handbook.md",
        "page": 2,
        "start": start,
        "end": end,
        "text": f"span of chunk {chunk}",
    }


def sentence(text: str, *markers: int) -> dict[str, Any]:
    return {"text": text, "markers": list(markers)}


def draft(title: str, sentences: list[dict[str, Any]], citations: list[dict[str, Any]]) -> Any:
    retrieved = frozenset(c["chunk_id"] for c in citations)
    return SectionDraft(title, sentences, citations, retrieved)


def build(*drafts: SectionDraft) -> Any:
    return assemble(
        "Leave",
        drafts,
        language=None,
        generated_at=datetime(2026, 11, 30, tzinfo=UTC),
        model="m",
        knowledge_bases=["hr"],
    )


def test_citations_are_renumbered_by_first_appearance_and_only_cited_sources_listed() -> None:
    first = draft(
        "Days",
        [sentence("Staff get twenty days of leave.", 2), sentence("Leave carries over.", 1)],
        [citation(1, 0), citation(2, 1), citation(3, 3)],  # local 3 is never cited
    )
    second = draft(
        "Requests",
        [sentence("Requests go to the manager.", 1), sentence("Carry-over is capped.", 2)],
        [citation(1, 2), citation(2, 0)],
    )
    built = build(first, second)
    document = built.document
    sections = [
        [s.citations for p in sec.paragraphs for s in p.sentences] for sec in document.sections
    ]
    # The summary (first sentence of each section) comes first: chunk 1, then chunk 2.
    assert [s.citations for p in document.summary for s in p.sentences] == [(1,), (2,)]
    assert sections == [[(1,), (3,)], [(2,), (3,)]]
    assert [r.chunk_id for r in document.references] == [
        uuid.UUID(CHUNKS[1]),
        uuid.UUID(CHUNKS[2]),
        uuid.UUID(CHUNKS[0]),
    ]
    assert [r.number for r in document.references] == [1, 2, 3]
    assert uuid.UUID(CHUNKS[3]) not in {r.chunk_id for r in document.references}


def test_a_claim_made_twice_on_one_span_is_kept_once() -> None:
    one = draft(
        "A", [sentence("Staff get twenty days of paid leave each year.", 1)], [citation(1, 0)]
    )
    two = draft(
        "B",
        [
            sentence("Each year staff get twenty days of paid leave.", 1),
            sentence("Unused days expire in March.", 2),
        ],
        [citation(1, 0), citation(2, 1)],
    )
    built = build(one, two)
    texts = [s.text for sec in built.document.sections for p in sec.paragraphs for s in p.sentences]
    assert texts == [
        "Staff get twenty days of paid leave each year.",
        "Unused days expire in March.",
    ]
    assert built.merged == 1


def test_a_sentence_citing_a_passage_its_section_did_not_retrieve_is_dropped() -> None:
    foreign = SectionDraft(
        "A",
        [sentence("Leave is unlimited.", 1), sentence("Leave is twenty days.", 2)],
        [citation(1, 3), citation(2, 0)],
        frozenset({CHUNKS[0]}),
    )
    built = build(foreign)
    texts = [s.text for sec in built.document.sections for p in sec.paragraphs for s in p.sentences]
    assert texts == ["Leave is twenty days."] and built.foreign == 1


def test_a_section_with_no_cited_sentence_is_left_out_and_the_document_survives_json() -> None:
    empty = draft("Nothing", [sentence("An uncited claim.")], [citation(1, 0)])
    kept = draft("Days", [sentence("Twenty days.", 1)], [citation(1, 1)])
    document = build(empty, kept).document
    assert [s.title for s in document.sections] == ["Days"]
    assert from_json(json.loads(json.dumps(to_json(document)))) == document


def test_a_plan_is_accepted_only_where_it_is_clean() -> None:
    text = json.dumps(
        {
            "title": "  Leave   policy ",
            "sections": [
                {"title": "Days", "questions": ["How many days?", "short", "How many days?"]},
                {"title": "days", "questions": ["A duplicate title?", "Is it kept at all?"]},
                {"title": "", "questions": ["Where is the title?", "Is it missing?"]},
                {"title": "Requests", "questions": "not a list"},
                "not an object",
                {"title": "Carry-over", "questions": ["What carries over?", "Until when?"]},
                {"title": "Beyond", "questions": ["One too many?", "Past the target?"]},
            ],
        }
    )
    title, sections = parse_plan(text, wanted=2)
    assert title == "Leave policy"
    assert [(s.title, s.questions) for s in sections] == [
        ("Days", ("How many days?",)),
        ("Carry-over", ("What carries over?", "Until when?")),
    ]
    assert parse_plan("{not json", 3) == (None, [])
    assert parse_plan("[1, 2]", 3) == (None, [])
    assert questions_from_text('{"questions": ["What is leave?"]}') == ("What is leave?",)
    assert questions_from_text("nonsense") == ()
    assert fallback_questions("Leave", "Days") == ("Days?", "What about Days in Leave?")


@pytest.mark.parametrize(
    ("titles", "says"),
    [
        ([], "at least one section"),
        ([f"Part {n}" for n in range(13)], "at most 12 sections, not 13"),
        (["Days", "  "], "section 2 of the outline has no title"),
        (["Days", "days"], "names 'days' twice"),
    ],
)
def test_a_persons_outline_is_checked(titles: list[str], says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        check_titles(titles)


def test_a_persons_outline_is_cleaned() -> None:
    assert check_titles(["  Days\n off ", "Requests"]) == ["Days off", "Requests"]
