"""The pure parts of the MCP tools: how an answer job's result and events read to a model."""

from __future__ import annotations

import uuid

from citeline.mcp_server.tools import _answer, _answer_text, _progress_message

KB = str(uuid.uuid4())
JOB = uuid.uuid4()


def _result(**extra: object) -> dict[str, object]:
    return {"status": "answered", "answer": "", "knowledge_base_id": KB, **extra}


def test_an_answer_reads_as_its_text_then_each_citation_with_its_quote() -> None:
    chunk_id = uuid.uuid4()
    citation = {
        "marker": 1,
        "chunk_id": str(chunk_id),
        "document_id": str(uuid.uuid4()),
        "title": "The Lighthouse",
        "source": "lighthouse.md",
        "page": None,
        "start": 30,
        "end": 80,
        "text": "built in 1847 by the engineer Maren Tolvik",
        "support": 0.9,
        "passage": 1,
    }
    answer = _answer(_result(answer="It was built in 1847 [1].", citations=[citation]), JOB)
    assert answer.citations[0].passage_id == chunk_id
    assert answer.job_id == JOB
    assert _answer_text(answer).splitlines() == [
        "It was built in 1847 [1].",
        "",
        "[1] The Lighthouse (lighthouse.md, characters 30-80): "
        "“built in 1847 by the engineer Maren Tolvik”",
    ]


def test_not_found_says_why() -> None:
    said = "I could not find an answer in the knowledge base 'handbook': nothing is relevant."
    answer = _answer(_result(status="not_found", answer=said, reason="nothing is relevant"), JOB)
    assert answer.citations == []
    assert _answer_text(answer) == f"Not found: {said}"


def test_progress_messages_name_what_the_job_is_doing() -> None:
    assert _progress_message("retrieval", {"passages": [{}, {}]}, 0) == "found 2 passages"
    assert _progress_message("token", {"text": "It"}, 12) == "writing (12 pieces so far)"
    assert _progress_message("progress", {"message": "loading the model"}, 0) == (
        "loading the model"
    )
    # Events a person would not follow are not reported.
    assert _progress_message("citation", {}, 0) is None
    assert _progress_message("progress", {"message": None}, 0) is None
