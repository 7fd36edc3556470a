"""Scoring answers: per kind of question, questions that may get either an answer or
not_found, and the new latency figures."""

from __future__ import annotations

from citeline.answers.evaluation import Outcome, Question, Report, on_gold


def outcome(kind: str, status: str, precise: list[bool], answerable: bool = True) -> Outcome:
    question = Question("q?", "gold" if answerable else None, None, answerable, kind)
    timings: dict[str, float | None] = {"first_token_ms": 1000.0, "total_ms": 3000.0}
    return Outcome(question, status, [True], [{}] * len(precise), precise, precise, 1, 1,
                   timings, "a")  # fmt: skip


def test_figures_per_kind_and_either_kinds_apart() -> None:
    report = Report(
        [
            outcome("heading", "answered", [True, True]),
            outcome("paraphrased", "not_found", []),
            outcome("false_premise", "not_found", []),
            outcome("foreign", "answered", [False]),
            outcome("unanswerable", "not_found", [], answerable=False),
        ]
    )
    summary = report.summary()
    assert summary["answerable"] == 2  # either-kinds are not counted as answerable
    assert summary["not_found_rate_answerable"] == 0.5
    assert summary["answer_or_not_found"] == 2 and summary["not_found_either"] == 1
    assert summary["citation_precision_gold_only"] == 2 / 3  # the foreign answer's citation too
    assert summary["not_found_unanswerable"] == 1
    assert summary["first_token_ms_p50"] == 1000.0
    assert summary["input_tokens_p50"] is None  # no outcome reported its usage
    assert summary["by_kind"]["heading"]["citation_precision"] == 1.0
    assert set(summary["by_kind"]) == {
        "heading",
        "paraphrased",
        "false_premise",
        "foreign",
        "unanswerable",
    }


def test_token_usage_is_summarised_from_the_outcomes_that_report_it() -> None:
    outcomes = [outcome("heading", "answered", [True]) for _ in range(3)]
    outcomes[0].usage = {"input_tokens": 400, "cached_tokens": 180}
    outcomes[1].usage = {"input_tokens": 600, "cached_tokens": 190}
    summary = Report(outcomes).summary()
    assert summary["input_tokens_p50"] == 500.0
    assert summary["cached_tokens_p50"] == 185.0


def test_a_line_names_its_kind() -> None:
    line = '{"question": "Ist zlib threadsicher?", "gold": "Yes.", "kind": "foreign"}'
    assert Question.parse(line, 1).kind == "foreign"
    assert Question.parse('{"question": "x?"}', 2).kind == "unanswerable"


def test_a_citation_is_on_a_short_gold_text_when_it_holds_all_of_it() -> None:
    gold = {"question": "Is zlib Y2K-compliant?", "gold": "Yes. zlib doesn't handle dates."}
    gold["page"] = "zlib-faq.txt"
    entry = "3. Is zlib Y2K-compliant?\n\n    Yes.  zlib doesn't handle dates."
    assert on_gold(entry, "zlib-faq.txt", gold)
    assert not on_gold(entry, "xz-faq.txt", gold)  # another page
    assert not on_gold("Yes. zlib doesn't handle files.", "zlib-faq.txt", gold)
    long = {**gold, "gold": "Run make shared in the source tree to build the library."}
    assert on_gold("Run make shared in the source tree.", "zlib-faq.txt", long)  # inside it
    assert not on_gold("Run make static in the source tree to build it.", "zlib-faq.txt", long)


def test_a_span_that_opens_with_its_own_entry_heading_is_on_that_entry() -> None:
    gold = {"gold": "Yes. However any library routines that zlib uses must be thread-safe."}
    own = {**gold, "page": None, "heading": "Is zlib thread-safe?"}
    assert on_gold("21. Is zlib thread-safe?\n\n    Yes.", None, own)
    assert not on_gold("22. Can I use zlib in my commercial application? Yes.", None, own)
    assert not on_gold("21. Is zlib thread-safe?", None, own)  # the heading alone says nothing
    assert not on_gold("21. Is zlib thread-safe? Yes.", None, {**own, "heading": None})
    labelled = {"gold": 'BCJ filter is called "x86" in liblzma. BCJ2 is not included.'}
    assert on_gold('A:  BCJ filter is called "x86" in liblzma.', None, labelled)
    xz = {"gold": "Nothing. They are just two letters.", "heading": "What do the letters XZ mean?"}
    assert on_gold("Q:  What do the letters XZ mean?\n\nA:  Nothing.", None, xz)
