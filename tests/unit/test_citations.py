"""Citation verification with the real embedding model: spans chosen by support, offsets
exact, markers the model got wrong corrected, unsupported claims left uncited."""

from __future__ import annotations

import dataclasses
import uuid

from citeline.answers.citations import (
    candidate_spans,
    heading_end,
    is_claim,
    numbers,
    opening_reply,
    verify,
)
from citeline.answers.passages import Passage, pack
from citeline.answers.text import marker_numbers, sentences, strip_markers
from citeline.llm.embedders import embedder_for
from citeline.settings import Settings

DOC = (
    "Intro line. The lighthouse was built in 1847 by Maren Tolvik. It is 41 metres tall. "
    "The bakery sells rye bread. It opens at six in the morning."
)


def passage(number: int, start: int, end: int, doc: str = DOC) -> Passage:
    return Passage(
        number=number,
        chunk_id=uuid.uuid4(),
        document_id=uuid.UUID(int=1),
        title="Harbour",
        source="harbour.md",
        heading_path=(),
        page=None,
        start=start,
        end=end,
        text=doc[start:end],
        score=1.0,
        relevance=0.8,
    )


LIGHTHOUSE = passage(1, 12, 83)
BAKERY = passage(2, 84, len(DOC))


def embed(texts: object) -> object:
    return embedder_for(Settings()).embed(texts)  # type: ignore[arg-type]


def test_sentences_keep_offsets_and_markers_are_read() -> None:
    text = "First claim here [1]. Second one [2, 3]!\n- a list item"
    parts = sentences(text)
    assert [text[p.start : p.end] for p in parts] == [p.text for p in parts]
    assert [p.text for p in parts] == [
        "First claim here [1].",
        "Second one [2, 3]!",
        "- a list item",
    ]
    assert marker_numbers(text) == [1, 2, 3]
    assert strip_markers("Done [1][2].") == "Done."


def test_claims_are_sentences_that_state_something() -> None:
    assert is_claim("The lighthouse was built in 1847.")
    assert not is_claim("Here are the steps:")
    assert not is_claim("I hope this helps.")
    assert not is_claim("Yes.")
    assert not is_claim("It was built in 1847.")
    assert is_claim("It was built in 1847.", marked=True)  # the model cited a passage for it


def test_each_claim_cites_the_span_that_supports_it_whatever_the_model_marked() -> None:
    draft = (
        "The lighthouse was built in 1847 by Maren Tolvik [2]. "
        "The bakery opens at six in the morning [1]. "
        "The moon is made of green cheese and orbits Jupiter [1]."
    )
    verified = verify(draft, [LIGHTHOUSE, BAKERY], embed, threshold=0.5)  # type: ignore[arg-type]
    built, opens = verified.sentences
    (moon,) = verified.dropped
    assert built.markers and opens.markers and not moon.markers
    assert moon.unsupported and moon.dropped == "unsupported"
    by_marker = {c.marker: c.as_json() for c in verified.citations}
    first = by_marker[built.markers[0]]
    assert first["text"] == "The lighthouse was built in 1847 by Maren Tolvik."
    assert DOC[first["start"] : first["end"]] == first["text"]
    second = by_marker[opens.markers[0]]
    assert second["passage"] == 2 and DOC[second["start"] : second["end"]] == second["text"]
    assert "six in the morning" in second["text"]
    assert verified.coverage is not None and abs(verified.coverage - 2 / 3) < 1e-9
    assert verified.answer.startswith("The lighthouse was built in 1847 by Maren Tolvik [1].")
    assert "green cheese" not in verified.answer
    assert verified.answer[built.start : built.end] == built.text
    assert verified.answer[opens.start : opens.end] == opens.text


def test_repeated_claims_and_talk_about_the_passages_are_left_out() -> None:
    draft = (
        "The passages explain that the lighthouse was built in 1847 by Maren Tolvik [1]. "
        "It was built by Maren Tolvik in 1847 [1]. "
        "The passages do not say who owns the bakery. "
        "The bakery opens at six in the morning [2]."
    )
    verified = verify(draft, [LIGHTHOUSE, BAKERY], embed, threshold=0.5)  # type: ignore[arg-type]
    assert verified.answer == (
        "The lighthouse was built in 1847 by Maren Tolvik [1]. "
        "The bakery opens at six in the morning [2]."
    )
    assert [s.dropped for s in verified.dropped] == ["repeated", "meta"]
    assert verified.coverage == 1.0


def test_an_introduction_without_what_it_introduces_is_left_out() -> None:
    draft = "The bakery opens at six in the morning [2]. To buy bread, do this:"
    verified = verify(draft, [LIGHTHOUSE, BAKERY], embed, threshold=0.5)  # type: ignore[arg-type]
    assert verified.answer == "The bakery opens at six in the morning [1]."
    assert [s.dropped for s in verified.dropped] == ["introduction"]


def test_a_shared_span_is_cited_once() -> None:
    draft = "The tower was built in 1847. Maren Tolvik built the lighthouse."
    verified = verify(draft, [LIGHTHOUSE, BAKERY], embed, threshold=0.45)  # type: ignore[arg-type]
    assert len(verified.citations) == 1
    assert [s.markers for s in verified.sentences] == [[1], [1]]


def test_packing_keeps_the_budget_and_skips_overlaps() -> None:
    twin = passage(3, 12, 60)
    packed = pack([LIGHTHOUSE, twin, BAKERY], 60, lambda text: len(text.split()))
    assert [p.text for p in packed] == [LIGHTHOUSE.text, BAKERY.text]
    assert [p.number for p in packed] == [1, 2]
    tight = pack([LIGHTHOUSE, BAKERY], 20, lambda text: len(text.split()))
    assert len(tight) == 1 and tight[0].text == LIGHTHOUSE.text


def test_a_short_reply_is_cited_when_read_with_its_question() -> None:
    question = "Who built the lighthouse?"
    verified = verify("Maren Tolvik.", [LIGHTHOUSE, BAKERY], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert verified.answer == "Maren Tolvik [1]."
    (citation,) = verified.citations
    assert citation.as_json()["text"] == "The lighthouse was built in 1847 by Maren Tolvik."
    # Without the question it says too little to check, as before.
    alone = verify("Maren Tolvik.", [LIGHTHOUSE, BAKERY], embed, 0.5)  # type: ignore[arg-type]
    assert alone.citations == [] and alone.answer == "Maren Tolvik."


def test_a_short_reply_never_borrows_support_for_words_the_passage_lacks() -> None:
    question = "Who built the lighthouse?"
    for reply in ("Ole Brandt.", "No.", "Yes."):
        verified = verify(reply, [LIGHTHOUSE, BAKERY], embed, 0.5, question=question)  # type: ignore[arg-type]
        assert verified.citations == [], reply


def test_a_short_reply_cites_the_sentence_that_answers_not_the_pair_around_it() -> None:
    question = "How tall is the lighthouse built by Maren Tolvik?"
    verified = verify("41 metres.", [LIGHTHOUSE, BAKERY], embed, 0.5, question=question)  # type: ignore[arg-type]
    (citation,) = verified.citations
    assert citation.as_json()["text"] == "It is 41 metres tall."
    # A fragment that is not a whole statement ("See" before a list) is not a reply to cite.
    fragment = verify("Tolvik", [LIGHTHOUSE, BAKERY], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert fragment.citations == []


def test_a_short_reply_that_turns_the_passage_around_or_answers_another_question_is_not_cited() -> (
    None
):
    passages = [LIGHTHOUSE, BAKERY]
    for question, reply in [
        ("Who built the lighthouse?", "Not Maren Tolvik."),
        ("When was the lighthouse built?", "Before 1847."),
        ("How tall is the lighthouse?", "Not 41 metres."),
        ("Who built the bakery?", "Maren Tolvik."),
    ]:
        verified = verify(reply, passages, embed, 0.5, question=question)  # type: ignore[arg-type]
        assert verified.citations == [], (question, reply)


def test_a_negated_claim_is_never_cited_by_a_span_that_negates_nothing() -> None:
    negated = verify("The lighthouse was not built by Maren Tolvik [1].", [LIGHTHOUSE], embed, 0.5)  # type: ignore[arg-type]
    assert negated.citations == [] and negated.dropped[0].dropped == "unsupported"
    plain = verify("The lighthouse was built by Maren Tolvik [1].", [LIGHTHOUSE], embed, 0.5)  # type: ignore[arg-type]
    assert [c.span.text for c in plain.citations] == [
        "The lighthouse was built in 1847 by Maren Tolvik."
    ]


def test_a_claim_is_cited_only_by_a_span_that_holds_its_numbers() -> None:
    passages = [LIGHTHOUSE, BAKERY]
    for claim in (
        "The lighthouse is 110 meters tall [1].",
        "The lighthouse was built in 1874 [1].",
    ):
        wrong = verify(claim, passages, embed, 0.5)  # type: ignore[arg-type]
        assert wrong.citations == [] and wrong.dropped[0].dropped == "unsupported", claim
    right = verify("The lighthouse is 41 meters tall [1].", passages, embed, 0.5)  # type: ignore[arg-type]
    (citation,) = right.citations
    assert "It is 41 metres tall." in citation.span.text
    reply = verify("110 metres.", passages, embed, 0.5, question="How tall is the lighthouse?")  # type: ignore[arg-type]
    assert reply.citations == []


def test_numbers_are_read_as_written_in_digits_without_a_list_number() -> None:
    assert numbers("1. Run make on 64-bit x86_64 with zlib 1.2.11 and 1,000 files") == {
        "64",
        "1.2.11",
        "1000",
    }


def faq(text: str) -> Passage:
    return passage(1, 0, len(text), text)


def test_a_question_in_a_passage_is_never_the_span_a_claim_cites() -> None:
    entry = faq(
        "13. How can I make a Unix shared library?\n\n    Run make shared in the source tree."
    )
    verified = verify("You can make a Unix shared library [1].", [entry], embed, 0.3)  # type: ignore[arg-type]
    assert all(not c.span.text.rstrip().endswith("?") for c in verified.citations)
    assert [s.text for s in candidate_spans([entry])] == [
        "13. How can I make a Unix shared library?\n\n    Run make shared in the source tree.",
        "Run make shared in the source tree.",
    ]


def test_a_bare_yes_or_no_stays_only_when_the_passage_it_is_checked_against_says_it() -> None:
    y2k = faq("3. Is zlib Y2K-compliant?\n\n    Yes. zlib doesn't handle dates.")
    question = "Is zlib Y2K-compliant?"
    kept = verify("Yes. zlib doesn't handle dates.", [y2k], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert kept.answer == "Yes. zlib doesn't handle dates [1]."
    gnu = faq("18. Is zlib under the GNU license?\n\n    No. Please read the license in zlib.h.")
    question = "Does zlib have any security vulnerabilities?"
    turned = verify("Yes. Please read the license in zlib.h.", [gnu], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert turned.answer == "Please read the license in zlib.h [1]."
    assert [(s.text, s.dropped) for s in turned.dropped] == [("Yes.", "unsupported")]
    alone = verify("No.", [gnu], embed, 0.5, question="Is zlib under the GNU license?")  # type: ignore[arg-type]
    assert alone.answer == "" and alone.dropped[0].text == "No."


def test_a_bare_reply_is_checked_against_every_place_its_claim_stands_in_the_passage() -> None:
    entries = faq(
        "17. Is zlib free?\n\n    Yes. Please read the license in zlib.h.\n\n"
        "18. Is zlib under the GNU license?\n\n    No. Please read the license in zlib.h."
    )
    question = "Is zlib under the GNU license?"
    answer = "No. Please read the license in zlib.h."
    verified = verify(answer, [entries], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert verified.answer == "No. Please read the license in zlib.h [1]."
    span = verified.citations[0].span
    assert span.text == "Please read the license in zlib.h."
    assert entries.text.rfind(span.text) == span.start  # the occurrence after "No."
    answer, question = "Yes. Please read the license in zlib.h.", "Is zlib free?"
    free = verify(answer, [entries], embed, 0.5, question=question)  # type: ignore[arg-type]
    assert free.answer == "Yes. Please read the license in zlib.h [1]."
    assert free.citations[0].span.start == entries.text.find(span.text)


def test_a_question_marked_q_is_never_cited_even_where_it_states_something() -> None:
    entry = faq(
        "Q:  The default build of liblzma is too big. How can I make it smaller?\n\n"
        "A:  The xz package can be configured to leave out unneeded encoders.\n"
        "Q: Is it fast? A: The build takes a minute."
    )
    texts = [s.text for s in candidate_spans([entry])]
    assert not any("too big" in t and "leave out" not in t for t in texts)
    assert "A:  The xz package can be configured to leave out unneeded encoders." in texts
    assert not any(t.startswith("How can I make it smaller?") for t in texts)
    assert not any(t.endswith("Is it fast?") for t in texts)
    assert any(t.endswith("The build takes a minute.") for t in texts)
    verified = verify("The default build of liblzma is too big [1].", [entry], embed, 0.5)  # type: ignore[arg-type]
    assert all("too big" not in c.span.text[-20:] for c in verified.citations)


def test_a_claim_that_opens_with_one_reply_never_cites_a_span_that_opens_with_the_other() -> None:
    entry = faq(
        "28. Can I access data randomly in a compressed stream?\n\n"
        "    No, not without some preparation.  If you have control over the compression\n"
        "    process, then you can use Z_FULL_FLUSH and keep an index of those locations."
    )
    claim = "Yes, you can access data randomly in a compressed stream by using Z_FULL_FLUSH."
    verified = verify(claim, [entry], embed, 0.3)  # type: ignore[arg-type]
    assert verified.citations and all("No, not" not in c.span.text for c in verified.citations)
    assert [opening_reply(t) for t in ("No, sorry.", "A: Yes.", "Is it? no.", "Nobody.")] == [
        "no", "yes", "no", None,
    ]  # fmt: skip


def test_a_passage_s_own_heading_is_not_evidence() -> None:
    heading = "2.2. When building Valgrind, 'make' fails with this:"
    text = f"{heading}\n    /usr/bin/ld: cannot find -lc\n\nYou need to install glibc-static."
    entry = dataclasses.replace(faq(text), heading_path=("2. Compiling", heading))
    assert heading_end(entry) == len(heading)
    texts = [s.text for s in candidate_spans([entry])]
    assert heading not in texts and "You need to install glibc-static." in texts
    wrapped = "30. Is there a simpler version of inflate I can look at to\n    understand it?"
    puff = dataclasses.replace(
        faq(f"{wrapped}\n\n    Look in zlib's contrib/puff directory."),
        heading_path=(" ".join(wrapped.split()),),
    )
    texts = [s.text for s in candidate_spans([puff])]
    assert not any(t.startswith("understand it?") for t in texts)
    assert "Look in zlib's contrib/puff directory." in texts
    # A chunk that opens with its chapter's title, a rule, then its section's heading.
    chapter = "2. Compiling, installing and configuring"
    opening = dataclasses.replace(
        faq(f"{chapter}\n{'-' * 40}\n\n{text}"), heading_path=(chapter, heading)
    )
    assert heading_end(opening) == len(opening.text) - len(text) + len(heading)
    assert heading not in [s.text for s in candidate_spans([opening])]
    verified = verify("Building Valgrind, make fails [1].", [entry], embed, 0.3)  # type: ignore[arg-type]
    assert all(c.span.text != heading for c in verified.citations)
    # A chunk that continues a section does not open with its heading: all of it is quoted.
    later = dataclasses.replace(faq("You need to install glibc-static."), heading_path=(heading,))
    assert heading_end(later) == 0
    assert [s.text for s in candidate_spans([later])] == ["You need to install glibc-static."]
