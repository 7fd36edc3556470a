"""Knowledge bases end to end: upload through the API, ingestion by a real worker, search."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from citeline.resources import Resources
from tests.conftest import DEV_CORPUS, WorkerFactory, wait_for
from tests.fixtures_docs import docx_bytes, pdf_bytes, zip_bomb_docx

pytestmark = pytest.mark.slow

CORPUS = DEV_CORPUS


def create_kb(api: str, name: str = "docs") -> dict[str, Any]:
    response = httpx.post(f"{api}/v1/knowledge-bases", json={"name": name, "description": "d"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def upload(api: str, kb_id: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    response = httpx.post(
        f"{api}/v1/knowledge-bases/{kb_id}/documents",
        files=[("files", (name, data)) for name, data in files],
        timeout=60,
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def documents(api: str, kb_id: str) -> dict[str, dict[str, Any]]:
    listed = httpx.get(f"{api}/v1/knowledge-bases/{kb_id}/documents").json()["documents"]
    return {d["source"]: d for d in listed}


def settled(api: str, kb_id: str) -> dict[str, dict[str, Any]] | None:
    docs = documents(api, kb_id)
    return docs if all(d["status"] in ("ready", "failed") for d in docs.values()) else None


def test_batch_with_good_and_bad_files(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    good = [
        (
            "guide.md",
            b"# Guide\n\nInstall packages with apt.\n\n## Upgrades\n\nRun apt upgrade often.\n",
        ),
        ("notes.txt", b"Plain notes about dpkg and its database.\n\nSecond paragraph."),
        ("manual.pdf", pdf_bytes(["The kernel page.", "Networking is on page two."])),
        (
            "letter.docx",
            docx_bytes([("Heading 1", "Letter"), ("Normal", "Dear reader of aptitude.")]),
        ),
        ("basic-defs.en.html", (CORPUS / "basic-defs.en.html").read_bytes()),
    ]
    bad = [
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf"),
        ("scanned.pdf", pdf_bytes([""])),
        ("binary.txt", b"\x00\x01\x02binary\x00"),
        ("latin1.txt", "café crème".encode("latin-1")),
        ("empty.md", b""),
        ("bomb.docx", zip_bomb_docx()),
    ]
    result = upload(api_url, kb["id"], [*good, ("program.exe", b"MZ\x90"), *bad])
    statuses = {d["source"]: d for d in result["documents"]}
    assert statuses["program.exe"]["status"] == "rejected"
    assert "unsupported file type .exe" in statuses["program.exe"]["error"]
    assert statuses["empty.md"]["status"] == "rejected"
    assert len(result["job_ids"]) == len(good) + len(bad) - 1
    start_worker("inprocess")
    docs = wait_for(lambda: settled(api_url, kb["id"]), timeout=120)
    assert isinstance(docs, dict)
    for name, _ in good:
        assert docs[name]["status"] == "ready", (name, docs[name]["error"])
        assert docs[name]["chunk_count"] >= 1
    reasons = {name: docs[name]["error"] for name, _ in bad if name in docs}
    assert "corrupt" in reasons["broken.pdf"]
    assert "no text layer" in reasons["scanned.pdf"]
    assert "binary data" in reasons["binary.txt"]
    assert "not valid UTF-8" in reasons["latin1.txt"]
    assert "zip bomb" in reasons["bomb.docx"]

    with resources.sessions() as session:
        rows = session.execute(
            text(
                'SELECT c.text, c.start, c."end", d.text, c.page, d.source '
                "FROM chunks c JOIN documents d ON d.id = c.document_id"
            )
        ).all()
    for chunk_text, start, end, document_text, _page, _source in rows:
        assert document_text[start:end] == chunk_text
    pages = {row[0]: row[4] for row in rows if row[5] == "manual.pdf"}
    assert pages == {"The kernel page.\n\nNetworking is on page two.": 1} or set(
        pages.values()
    ) <= {1, 2}

    hits = httpx.get(
        f"{api_url}/v1/knowledge-bases/{kb['id']}/search",
        params={"q": "networking page two", "k": 3},
    ).json()["hits"]
    assert hits[0]["source"] == "manual.pdf"
    assert set(hits[0]) >= {
        "chunk_id",
        "document_id",
        "title",
        "source",
        "heading_path",
        "page",
        "start",
        "end",
        "text",
        "score",
        "ranks",
    }
    assert hits[0]["ranks"]["keyword"] == 1

    original = httpx.get(
        f"{api_url}/v1/knowledge-bases/{kb['id']}/documents/{docs['notes.txt']['id']}/file"
    )
    assert original.content == good[1][1]


def test_the_listing_counts_documents_by_status(api_url: str) -> None:
    """`kb list` reads every knowledge base's counts from the one listing request."""
    filled, empty = create_kb(api_url, "filled"), create_kb(api_url, "empty")
    upload(api_url, filled["id"], [("a.md", b"# A\n\nOne."), ("b.txt", b"Two."), ("c.md", b"")])
    listed = httpx.get(f"{api_url}/v1/knowledge-bases").json()["knowledge_bases"]
    counts = {kb["name"]: kb["document_counts"] for kb in listed}
    assert counts == {"filled": {"queued": 2}, "empty": {}}
    single = httpx.get(f"{api_url}/v1/knowledge-bases/{empty['id']}").json()
    assert single["document_counts"] is None


def test_reupload_is_a_noop_and_a_change_replaces_chunks(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    start_worker("inprocess")
    first = upload(api_url, kb["id"], [("a.md", b"# A\n\nAlpha version one.")])
    wait_for(lambda: settled(api_url, kb["id"]), timeout=60)
    again = upload(api_url, kb["id"], [("a.md", b"# A\n\nAlpha version one.")])
    assert again["documents"][0]["status"] == "unchanged"
    assert again["job_ids"] == []
    upload(api_url, kb["id"], [("a.md", b"# A\n\nBeta version two, entirely new words.")])
    wait_for(
        lambda: (
            (d := settled(api_url, kb["id"]))
            and d["a.md"]["content_hash"] != first
            and d["a.md"]["status"] == "ready"
            and "Beta" in search_text(api_url, kb["id"], "beta")
        ),
        timeout=60,
    )
    assert search_text(api_url, kb["id"], "alpha") == ""
    doc_id = documents(api_url, kb["id"])["a.md"]["id"]
    assert (
        httpx.delete(f"{api_url}/v1/knowledge-bases/{kb['id']}/documents/{doc_id}").status_code
        == 204
    )
    with resources.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM chunks")).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM chunk_terms")).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM term_stats")).scalar() == 0
        assert session.execute(
            text("SELECT chunk_count, total_terms FROM knowledge_bases")
        ).one() == (0, 0)


def search_text(api: str, kb_id: str, query: str) -> str:
    hits = httpx.get(
        f"{api}/v1/knowledge-bases/{kb_id}/search", params={"q": query, "mode": "keyword"}
    ).json()["hits"]
    return " ".join(h["text"] for h in hits)


def test_bm25_matches_a_hand_computation(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    corpus = {
        "one.txt": b"apple banana apple",
        "two.txt": b"banana cherry",
        "three.txt": b"cherry cherry cherry date",
    }
    upload(api_url, kb["id"], list(corpus.items()))
    start_worker("inprocess")
    wait_for(lambda: settled(api_url, kb["id"]), timeout=60)
    hits = httpx.get(
        f"{api_url}/v1/knowledge-bases/{kb['id']}/search",
        params={"q": "apple cherry", "mode": "keyword"},
    ).json()["hits"]
    # Stems: appl, banana, cherri, date. Lengths 3, 2, 4; avgdl 3; N 3.
    n, avgdl, k1, b = 3, 3.0, 1.2, 0.75

    def idf(df: int) -> float:
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def term(tf: int, length: int, df: int) -> float:
        return idf(df) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))

    expected = {
        "one.txt": term(2, 3, 1),
        "two.txt": term(1, 2, 2),
        "three.txt": term(3, 4, 2),
    }
    got = {h["source"]: h["scores"]["keyword"] for h in hits}
    assert got == pytest.approx(expected, rel=1e-9)
    assert [h["source"] for h in hits] == sorted(expected, key=lambda s: -expected[s])


def test_unknown_kb_empty_query_and_bad_names(api_url: str) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert httpx.get(f"{api_url}/v1/knowledge-bases/{missing}").status_code == 404
    assert httpx.post(f"{api_url}/v1/knowledge-bases", json={"name": ""}).status_code == 422
    create_kb(api_url, "twice")
    assert httpx.post(f"{api_url}/v1/knowledge-bases", json={"name": "twice"}).status_code == 409
    kb = create_kb(api_url, "empty")
    assert (
        httpx.get(f"{api_url}/v1/knowledge-bases/{kb['id']}/search", params={"q": ""}).status_code
        == 422
    )
    assert httpx.get(
        f"{api_url}/v1/knowledge-bases/{kb['id']}/search", params={"q": "anything"}
    ).json() == {"hits": []}
    no_files = httpx.post(f"{api_url}/v1/knowledge-bases/{kb['id']}/documents", data={"x": "1"})
    assert no_files.status_code == 422


def test_filters_by_document_and_metadata(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    for name, team in (("red.md", "red"), ("blue.md", "blue")):
        response = httpx.post(
            f"{api_url}/v1/knowledge-bases/{kb['id']}/documents",
            files=[("files", (name, f"# {name}\n\nShared words about kernels.".encode()))],
            data={"metadata": json.dumps({"team": team})},
        )
        assert response.status_code == 202
    start_worker("inprocess")
    docs = wait_for(lambda: settled(api_url, kb["id"]), timeout=60)
    assert isinstance(docs, dict)
    url = f"{api_url}/v1/knowledge-bases/{kb['id']}/search"
    both = httpx.get(url, params={"q": "kernels"}).json()["hits"]
    assert {h["source"] for h in both} == {"red.md", "blue.md"}
    by_meta = httpx.get(url, params={"q": "kernels", "metadata": '{"team": "blue"}'}).json()["hits"]
    assert {h["source"] for h in by_meta} == {"blue.md"}
    red_id = docs["red.md"]["id"]
    by_doc = httpx.get(url, params={"q": "kernels", "document_id": red_id, "mode": "dense"}).json()
    assert {h["source"] for h in by_doc["hits"]} == {"red.md"}
    bad = httpx.get(url, params={"q": "kernels", "metadata": "[1]"})
    assert bad.status_code == 422


def test_vector_search_uses_the_knowledge_base_hnsw_index(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    upload(api_url, kb["id"], [("a.txt", b"Some text to index.")])
    start_worker("inprocess")
    wait_for(lambda: settled(api_url, kb["id"]), timeout=60)
    vector = "[" + ",".join(["0.05"] * 384) + "]"
    with resources.sessions() as session:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            session.execute(text(f"SET {setting} = off"))
        plan = "\n".join(
            row[0]
            for row in session.execute(
                text(
                    f"EXPLAIN SELECT id FROM chunks WHERE knowledge_base_id = '{kb['id']}' "
                    f"ORDER BY embedding::vector(384) <=> '{vector}'::vector(384) LIMIT 10"
                )
            )
        )
    assert f"ix_chunks_hnsw_{kb['id'].replace('-', '')}" in plan


def test_oversized_uploads_are_refused(resources: Resources, start_worker: WorkerFactory) -> None:
    from citeline.api.app import create_app
    from tests.conftest import LiveServer

    small = resources.settings.model_copy(
        update={"max_upload_bytes": 1000, "max_request_bytes": 50_000}
    )
    limited = Resources.connect(small, resources.database_url, resources.redis_url)
    try:
        with LiveServer(create_app(limited)) as api:
            kb = create_kb(api, "limited")
            result = upload(api, kb["id"], [("big.txt", b"x " * 1000), ("small.txt", b"fits")])
            by_name = {d["source"]: d for d in result["documents"]}
            assert by_name["big.txt"]["status"] == "rejected"
            assert "over the" in by_name["big.txt"]["error"]
            assert by_name["small.txt"]["status"] == "queued"
            huge = httpx.post(
                f"{api}/v1/knowledge-bases/{kb['id']}/documents",
                files=[("files", ("huge.txt", b"y" * 60_000))],
            )
            assert huge.status_code == 413
            assert "over the" in huge.json()["detail"]
    finally:
        limited.close()


def test_reindex_rebuilds_every_document(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    kb = create_kb(api_url)
    upload(api_url, kb["id"], [("a.md", b"# A\n\nAlpha text."), ("b.txt", b"Beta text.")])
    start_worker("inprocess")
    before = wait_for(lambda: settled(api_url, kb["id"]), timeout=60)
    assert isinstance(before, dict)
    job_ids = resources.knowledge().reindex(kb["id"])
    assert len(job_ids) == 2
    wait_for(lambda: all(resources.jobs().get(j).state == "finished" for j in job_ids), timeout=60)
    after = documents(api_url, kb["id"])
    assert {name: d["status"] for name, d in after.items()} == {"a.md": "ready", "b.txt": "ready"}
    assert {name: d["chunk_count"] for name, d in after.items()} == {
        name: d["chunk_count"] for name, d in before.items()
    }
    assert search_text(api_url, kb["id"], "alpha") == "A\n\nAlpha text."
