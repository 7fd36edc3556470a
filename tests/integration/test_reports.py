"""Reports end to end: planned, researched one job per section on real workers, assembled once,
exported; a section that fails leaves the rest (`partial`) and a retry runs only it; a worker
killed mid-section is replaced and the assembly still runs once.

The model is a scripted OpenAI-compatible server (a remote provider, outside the system) that
answers each prompt as a model would: a plan, questions, and sections whose sentences quote the
passages it was given. The queue, database, workers, embeddings and verifier are the real ones."""

from __future__ import annotations

import io
import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from citeline.jobs.models import Job
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.report_model import DOCUMENTS, FOUNDED, INVENTED, Model


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
        llm_max_retries=0,
    )


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, Model]]:
    script = Model()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


@pytest.fixture
def api(resources: Resources, model: tuple[FakeLLMServer, Model]) -> Iterator[str]:
    server, _ = model
    registry = resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=server.openai_base_url))
    registry.set_routes("report", [("scripted", 1.0)])
    with LiveServer(_app(resources)) as url:
        yield url


def _app(resources: Resources) -> Any:
    from citeline.api.app import create_app

    return create_app(resources)


def ingest(api: str, name: str, files: list[tuple[str, bytes]]) -> str:
    kb: str = httpx.post(f"{api}/v1/knowledge-bases", json={"name": name}).json()["id"]
    httpx.post(f"{api}/v1/knowledge-bases/{kb}/documents", files=[("files", f) for f in files])

    def ready() -> bool:
        docs = httpx.get(f"{api}/v1/knowledge-bases/{kb}/documents").json()["documents"]
        return bool(docs) and all(doc["status"] == "ready" for doc in docs)

    wait_for(ready, timeout=120)
    return kb


def start(api: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{api}/v1/reports", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    return created


def ended(api: str, report_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        report: dict[str, Any] = httpx.get(f"{api}/v1/reports/{report_id}").json()
        return report if report["status"] not in ("queued", "started") else None

    result = wait_for(done, timeout=timeout)
    assert isinstance(result, dict)
    return result


def assemblies(resources: Resources, report_id: str) -> int:
    with resources.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.kind == "reports.assemble", Job.args["report_id"].astext == report_id)
        )
    return int(count or 0)


def test_a_report_is_planned_researched_in_parallel_assembled_and_exported(
    api: str, resources: Resources, start_worker: WorkerFactory, model: tuple[FakeLLMServer, Model]
) -> None:
    start_worker(mode="inprocess")
    start_worker(mode="inprocess")
    kb = ingest(api, "harbour", DOCUMENTS)
    created = start(api, topic="The Varnholm lighthouse", knowledge_bases=["harbour"], sections=3)
    report_id = created["report_id"]
    with httpx.stream("GET", f"{api}{created['events_url']}", timeout=120) as stream:
        events = read_sse(stream.iter_lines())
    kinds = [event["event"] for event in events]
    assert kinds[0] == "queued" and kinds[-1] == "finished", kinds
    assert "outline" in kinds and "report.assembled" in kinds
    assert kinds.count("section.started") == 3 and kinds.count("section.finished") == 3
    assert kinds.index("outline") < kinds.index("section.started")
    assert kinds.index("report.assembled") > max(
        i for i, kind in enumerate(kinds) if kind == "section.finished"
    )
    # Reconnecting after an event id gives only what followed it.
    with httpx.stream(
        "GET", f"{api}{created['events_url']}", headers={"Last-Event-ID": events[-3]["id"]}
    ) as stream:
        again = read_sse(stream.iter_lines())
    assert [e["id"] for e in again] == [e["id"] for e in events[-2:]]

    report = ended(api, report_id)
    assert report["status"] == "finished", (report["error"], report["sections"])
    assert report["title"] == "The Varnholm lighthouse"
    assert [s["title"] for s in report["sections"]] == ["Construction", "Lamps", "Keepers"]
    assert all(s["status"] == "finished" and s["progress"] == 1.0 for s in report["sections"])
    assert report["knowledge_base_ids"] == [kb] and report["progress"] == 1.0
    assert report["timings"]["total_s"] is not None and report["first_section_at"] is not None
    assert len({s["job_id"] for s in report["sections"]}) == 3
    assert assemblies(resources, report_id) == 1

    cited = check_grounding(api, report)
    check_exports(api, resources, report_id, cited)

    listed = httpx.get(f"{api}/v1/reports").json()["reports"]
    assert [r["id"] for r in listed] == [report_id]
    late = httpx.post(f"{api}/v1/reports/{report_id}/cancel")
    assert late.status_code == 409 and "already ended" in late.json()["detail"]
    nothing = httpx.post(f"{api}/v1/reports/{report_id}/retry")
    assert nothing.status_code == 409 and "no failed" in nothing.json()["detail"]
    deleted = httpx.delete(f"{api}/v1/reports/{report_id}")
    assert deleted.status_code == 204, deleted.text
    assert httpx.get(f"{api}/v1/reports/{report_id}").status_code == 404
    assert not list((resources.settings.data_path / "files").rglob("v1.*"))


def check_grounding(api: str, report: dict[str, Any]) -> set[int]:
    """The invented claim is dropped everywhere; every cited span is in its document and was
    retrieved by the section that cites it; a claim all sections made appears once. Returns
    the citation numbers the report uses."""
    document = report["document"]
    sentences = [s for section in document["sections"] for p in section["paragraphs"] for s in p]
    texts = [s["text"] for s in sentences]
    assert texts and all(INVENTED not in text for text in texts)
    assert len(texts) == len(set(texts))
    assert sum(FOUNDED in text for text in texts) == 1, texts
    assert any(INVENTED in dropped for s in report["sections"] for dropped in s["dropped"])
    sources = [body.decode() for _, body in DOCUMENTS]
    cited = {n for s in sentences for n in s["citations"]}
    assert all(s["citations"] for s in sentences)
    references = document["references"]
    assert sorted(r["number"] for r in references) == sorted(cited)
    assert {r["knowledge_base_id"] for r in references} == set(report["knowledge_base_ids"])
    for reference in references:
        quote = " ".join(reference["quote"].split())
        assert any(quote in " ".join(body.split()) for body in sources), reference
    audit = httpx.get(f"{api}/v1/reports/{report['id']}/audit").json()
    for section in audit["sections"]:
        retrieved = {p["chunk_id"] for p in section["passages"]}
        assert {c["chunk_id"] for c in section["citations"]} <= retrieved
        assert section["draft"] and INVENTED in section["draft"]
        calls = section["model_calls"]
        assert any(c["purpose"] == "write section" for c in calls)
        assert all(c["input_tokens"] > 0 and c["latency_ms"] >= 0 for c in calls)
    assert audit["sections"][0]["model_calls"][0]["purpose"] == "plan"
    return cited


def check_exports(api: str, resources: Resources, report_id: str, cited: set[int]) -> None:
    """Every format, each citation a numbered link to its reference, stored once."""
    md = httpx.get(f"{api}/v1/reports/{report_id}/export", params={"format": "md"}, timeout=60)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "attachment" in md.headers["content-disposition"]
    for number in cited:
        assert f"[\\[{number}\\]](#ref-{number})" in md.text, md.text[:2000]
    html = httpx.get(
        f"{api}/v1/reports/{report_id}/export", params={"format": "html"}, timeout=60
    ).text
    for number in cited:
        assert f'href="#ref-{number}"' in html and f'id="ref-{number}"' in html
    pdf = httpx.get(f"{api}/v1/reports/{report_id}/export", params={"format": "pdf"}, timeout=60)
    assert pdf.content.startswith(b"%PDF")
    docx = httpx.get(f"{api}/v1/reports/{report_id}/export", params={"format": "docx"}, timeout=60)
    with zipfile.ZipFile(io.BytesIO(docx.content)) as archive:
        assert "word/document.xml" in archive.namelist()
    stored = sorted(p.name for p in (resources.settings.data_path / "files").rglob("v1.*"))
    assert stored == ["v1.docx", "v1.html", "v1.md", "v1.pdf"], stored
    # Served again from export storage: the same bytes.
    assert httpx.get(
        f"{api}/v1/reports/{report_id}/export", params={"format": "pdf"}, timeout=60
    ).content == (pdf.content)
    unknown = httpx.get(
        f"{api}/v1/reports/{report_id}/export", params={"format": "odt"}, timeout=60
    )
    assert unknown.status_code == 422 and "format" in unknown.text


def test_a_failed_section_leaves_a_partial_report_and_a_retry_runs_only_it(
    api: str, start_worker: WorkerFactory, model: tuple[FakeLLMServer, Model]
) -> None:
    _, script = model
    script.broken.add("Lamps")
    start_worker(mode="inprocess")
    ingest(api, "harbour", DOCUMENTS)
    created = start(api, topic="The Varnholm lighthouse", knowledge_bases=["harbour"], sections=3)
    report = ended(api, created["report_id"])
    assert report["status"] == "partial", report
    by_title = {s["title"]: s for s in report["sections"]}
    assert by_title["Lamps"]["status"] == "failed"
    assert "scripted refusal" in by_title["Lamps"]["error"]
    assert by_title["Construction"]["status"] == by_title["Keepers"]["status"] == "finished"
    assert [s["title"] for s in report["document"]["sections"]] == ["Construction", "Keepers"]
    assert "1 failed" in report["error"]
    kept = {title: by_title[title]["sentences"] for title in ("Construction", "Keepers")}
    assert httpx.get(
        f"{api}/v1/reports/{created['report_id']}/export", params={"format": "md"}, timeout=60
    ).is_success

    script.broken.clear()
    written_before = list(script.sections)
    retried = httpx.post(f"{api}/v1/reports/{created['report_id']}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["job_id"] != created["job_id"]
    report = ended(api, created["report_id"])
    assert report["status"] == "finished", (report["error"], report["sections"])
    assert script.sections[len(written_before) :] == ["Lamps"]
    assert [s["title"] for s in report["document"]["sections"]] == [
        "Construction",
        "Lamps",
        "Keepers",
    ]
    by_title = {s["title"]: s for s in report["sections"]}
    assert {t: by_title[t]["sentences"] for t in kept} == kept
    assert by_title["Lamps"]["attempts"] == 2
    # A new version: its exports are rendered anew, the old one's stay until deleted.
    export = httpx.get(
        f"{api}/v1/reports/{created['report_id']}/export", params={"format": "md"}, timeout=60
    )
    assert "Lamps" in export.text and "whale oil" in export.text


def test_a_worker_killed_mid_section_is_replaced_and_the_report_assembles_once(
    api: str,
    resources: Resources,
    start_worker: WorkerFactory,
    model: tuple[FakeLLMServer, Model],
) -> None:
    server, script = model
    script.hang.add("Keepers")
    ingest_worker = start_worker(mode="inprocess")
    ingest(api, "harbour", DOCUMENTS)
    os.killpg(ingest_worker.pid, signal.SIGTERM)
    ingest_worker.wait(30)
    doomed = start_worker(mode="inprocess")
    created = start(
        api,
        topic="The Varnholm lighthouse",
        knowledge_bases=["harbour"],
        outline=["Construction", "Keepers"],
    )
    wait_for(lambda: "Keepers" in script.sections, timeout=120)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    start_worker(mode="inprocess")
    report = ended(api, created["report_id"], timeout=180)
    assert report["status"] == "finished", (report["error"], report["sections"])
    keepers = next(s for s in report["sections"] if s["title"] == "Keepers")
    assert keepers["attempts"] == 2 and keepers["status"] == "finished"
    assert assemblies(resources, created["report_id"]) == 1
    assert [s["title"] for s in report["document"]["sections"]] == ["Construction", "Keepers"]
    # With a fixed outline the model only wrote the questions of each section.
    purposes = [
        c["purpose"]
        for s in httpx.get(f"{api}/v1/reports/{created['report_id']}/audit").json()["sections"]
        for c in s["model_calls"]
    ]
    assert purposes.count("questions") == 2 and "plan" not in purposes
    assert server.pending == 0


def test_cancel_stops_every_section(
    api: str, start_worker: WorkerFactory, model: tuple[FakeLLMServer, Model]
) -> None:
    _, script = model
    script.hang.update({"Construction", "Lamps", "Keepers"})
    start_worker(mode="inprocess")
    ingest(api, "harbour", DOCUMENTS)
    created = start(api, topic="The Varnholm lighthouse", knowledge_bases=["harbour"], sections=3)
    wait_for(lambda: script.sections, timeout=120)
    cancelled = httpx.post(f"{api}/v1/reports/{created['report_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "stopped"
    report = ended(api, created["report_id"])
    assert report["status"] == "stopped"
    assert all(s["status"] == "stopped" for s in report["sections"]), report["sections"]

    def children_ended() -> bool:
        children = httpx.get(f"{api}/v1/jobs/{created['job_id']}/children").json()["jobs"]
        return bool(children) and all(c["state"] == "stopped" for c in children)

    wait_for(children_ended, timeout=30)
    assert httpx.get(f"{api}/v1/reports/{created['report_id']}").json()["status"] == "stopped"
    export = httpx.get(f"{api}/v1/reports/{created['report_id']}/export")
    assert export.status_code == 409 and "nothing to export" in export.json()["detail"]


def test_bad_requests_are_refused_clearly_and_store_nothing(
    api: str, start_worker: WorkerFactory, model: tuple[FakeLLMServer, Model]
) -> None:
    start_worker(mode="inprocess")
    ingest(api, "harbour", DOCUMENTS)
    httpx.post(f"{api}/v1/knowledge-bases", json={"name": "empty"})

    def refused(body: dict[str, Any], status: int, says: str) -> None:
        response = httpx.post(f"{api}/v1/reports", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert says in response.json()["detail"], response.json()

    topic = "The Varnholm lighthouse"
    refused({"topic": topic, "knowledge_bases": ["nowhere"]}, 404, "nowhere")
    refused({"topic": topic, "knowledge_bases": ["empty"]}, 409, "no indexed documents")
    refused({"topic": topic, "knowledge_bases": []}, 422, "knowledge_bases")
    refused({"topic": "   ", "knowledge_bases": ["harbour"]}, 422, "topic is empty")
    fifty = [f"Part {n}" for n in range(50)]
    refused({"topic": topic, "knowledge_bases": ["harbour"], "outline": fifty}, 422, "at most 12")
    refused(
        {"topic": topic, "knowledge_bases": ["harbour"], "outline": ["Lamps", " "]},
        422,
        "section 2 of the outline has no title",
    )
    refused({"topic": topic, "knowledge_bases": ["harbour"], "sections": 40}, 422, "sections")
    refused({"topic": topic, "knowledge_bases": ["harbour"], "colour": "red"}, 422, "colour")
    assert httpx.get(f"{api}/v1/reports").json()["reports"] == []
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("GET", f"/v1/reports/{missing}"),
        ("GET", f"/v1/reports/{missing}/audit"),
        ("GET", f"/v1/reports/{missing}/events"),
        ("GET", f"/v1/reports/{missing}/export"),
        ("POST", f"/v1/reports/{missing}/cancel"),
        ("POST", f"/v1/reports/{missing}/retry"),
        ("DELETE", f"/v1/reports/{missing}"),
    ]:
        response = httpx.request(method, f"{api}{path}")
        assert response.status_code == 404, (method, path, response.text)
    assert httpx.get(f"{api}/v1/reports/not-a-uuid").status_code == 422


def test_a_topic_the_knowledge_base_says_nothing_about_is_not_found(
    api: str, start_worker: WorkerFactory, model: tuple[FakeLLMServer, Model]
) -> None:
    server, script = model
    start_worker(mode="inprocess")
    ingest(api, "harbour", DOCUMENTS)
    created = start(
        api,
        topic="Quantum chromodynamics of the gluon plasma in heavy-ion collisions",
        knowledge_bases=["harbour"],
    )
    report = ended(api, created["report_id"])
    assert report["status"] == "not_found", report
    assert report["closest"] and "nothing relevant" in report["error"]
    assert report["sections"] == [] and report["document"] is None
    assert server.requests == [] and script.sections == []
    retried = httpx.post(f"{api}/v1/reports/{created['report_id']}/retry")
    assert retried.status_code == 409 and "start a new report" in retried.json()["detail"]
