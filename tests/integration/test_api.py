"""The HTTP API over a real server, database and Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from citeline.api.app import create_app
from citeline.resources import Resources
from citeline.server import DrainingServer
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for

pytestmark = pytest.mark.slow


def test_health_and_readiness_report_missing_workers(
    api_url: str, start_worker: WorkerFactory
) -> None:
    """An API replica without workers still takes requests (jobs wait in the queue)."""
    assert httpx.get(f"{api_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{api_url}/ready")
    assert ready.status_code == 200
    assert "no worker is running" in ready.json()["checks"]["workers"]
    start_worker()
    wait_for(lambda: httpx.get(f"{api_url}/ready").json()["checks"]["workers"] == "ok")


def test_a_stopping_server_ends_streams_with_a_reconnect_hint(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    """uvicorn would wait `timeout_graceful_shutdown` for an open stream, then cut it; the
    drain ends it at once, and the client resumes on another replica with Last-Event-ID."""
    job = resources.jobs().enqueue("test.block", {"max_seconds": 60})
    start_worker()
    wait_for(lambda: resources.redis.get(f"test:block:{job.id}:beats"), timeout=60)
    app = create_app(resources)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, timeout_graceful_shutdown=60
    )
    server = DrainingServer(config, app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15)
    port = server.servers[0].sockets[0].getsockname()[1]
    lines: list[str] = []
    with httpx.stream("GET", f"http://127.0.0.1:{port}/v1/jobs/{job.id}/events", timeout=30) as r:
        for line in r.iter_lines():
            lines.append(line)
            if line == "event: started" and not server.should_exit:
                stopping = time.monotonic()
                server.should_exit = True
    assert time.monotonic() - stopping < 10
    thread.join(30)
    assert not thread.is_alive()
    assert "retry: 250" in lines and "event: finished" not in lines
    seen = [int(line[3:]) for line in lines if line.startswith("id:")]
    resources.redis.set(f"test:block:{job.id}:release", 1)
    with LiveServer(create_app(resources)) as other:
        resumed = httpx.get(
            f"{other}/v1/jobs/{job.id}/events",
            headers={"Last-Event-ID": str(seen[-1])},
            timeout=60,
        )
    rest = read_sse(iter(resumed.text.splitlines()))
    ids = seen + [int(event["id"]) for event in rest]
    assert ids == list(range(1, ids[-1] + 1))
    assert rest[-1]["event"] == "finished"


def test_unknown_and_malformed_ids_get_problem_details(api_url: str) -> None:
    missing = httpx.get(f"{api_url}/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    body = missing.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == 404
    malformed = httpx.get(f"{api_url}/v1/jobs/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "path.job_id"
    bad_limit = httpx.get(f"{api_url}/v1/jobs", params={"limit": 0})
    assert bad_limit.status_code == 422
    assert "query.limit" in bad_limit.json()["detail"]
    assert httpx.get(f"{api_url}/v1/nothing").status_code == 404


def test_list_get_result_and_cancel(resources: Resources, api_url: str) -> None:
    job = resources.jobs().enqueue("test.echo", {"value": 3})
    listed = httpx.get(f"{api_url}/v1/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [str(job.id)]
    assert httpx.get(f"{api_url}/v1/jobs", params={"state": "finished"}).json()["jobs"] == []
    pending = httpx.get(f"{api_url}/v1/jobs/{job.id}/result")
    assert pending.status_code == 409
    assert "queued" in pending.json()["detail"]
    cancelled = httpx.post(f"{api_url}/v1/jobs/{job.id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "stopped"
    assert httpx.post(f"{api_url}/v1/jobs/{job.id}/cancel").status_code == 409
    assert "x-request-id" in cancelled.headers


def test_result_of_finished_job(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.echo", {"value": [1, 2]})
    start_worker()
    wait_for(lambda: httpx.get(f"{api_url}/v1/jobs/{job.id}").json()["state"] == "finished")
    result = httpx.get(f"{api_url}/v1/jobs/{job.id}/result").json()
    assert result == {"job_id": str(job.id), "result": {"echo": [1, 2], "attempt": 1}}
    shown = httpx.get(f"{api_url}/v1/jobs/{job.id}").json()
    assert shown["queue_seconds"] is not None and shown["run_seconds"] is not None


def test_event_stream_of_a_finished_job_replays_and_ends(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.events", {"count": 5})
    start_worker()
    wait_for(lambda: resources.jobs().get(job.id).state == "finished")
    with httpx.stream("GET", f"{api_url}/v1/jobs/{job.id}/events", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response.iter_lines())
    assert [int(e["id"]) for e in events] == list(range(1, 9))
    assert [e["event"] for e in events] == ["queued", "started", *["tick"] * 5, "finished"]
    assert json.loads(events[2]["data"])["data"] == {"index": 0}


def test_reconnecting_client_gets_every_event_exactly_once(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    job = resources.jobs().enqueue("test.events", {"count": 40, "pause": 0.03})
    url = f"{api_url}/v1/jobs/{job.id}/events"
    start_worker()
    seen: list[int] = []
    with httpx.stream("GET", url, timeout=30) as response:
        seen += [int(e["id"]) for e in read_sse(response.iter_lines(), limit=7)]
    time.sleep(0.3)  # events keep arriving while the client is away
    for _ in range(2):
        headers = {"Last-Event-ID": str(seen[-1])}
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            batch = read_sse(response.iter_lines(), limit=10)
            seen += [int(e["id"]) for e in batch]
    with httpx.stream("GET", url, headers={"Last-Event-ID": str(seen[-1])}, timeout=30) as response:
        rest = read_sse(response.iter_lines())
    seen += [int(e["id"]) for e in rest]
    assert rest[-1]["event"] == "finished"
    total = resources.jobs().get(job.id).event_seq
    assert seen == list(range(1, total + 1))


def test_idle_stream_sends_heartbeats(resources: Resources, api_url: str) -> None:
    job = resources.jobs().enqueue("test.echo")
    with httpx.stream("GET", f"{api_url}/v1/jobs/{job.id}/events", timeout=10) as response:
        lines = response.iter_lines()
        seen_heartbeat = False
        for line in lines:
            if line.startswith(": heartbeat"):
                seen_heartbeat = True
                break
    assert seen_heartbeat


def test_metrics_expose_http_queue_and_job_figures(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    resources.jobs().enqueue("test.echo")
    queued = httpx.get(f"{api_url}/metrics").text
    assert 'citeline_queue_depth{queue="default"} 1.0' in queued
    start_worker()
    wait_for(
        lambda: (
            'citeline_jobs_total{kind="test.echo",outcome="finished"} 1.0'
            in httpx.get(f"{api_url}/metrics").text
        )
    )
    text = httpx.get(f"{api_url}/metrics").text
    assert 'citeline_job_duration_seconds_count{kind="test.echo",outcome="finished"} 1.0' in text
    assert 'citeline_http_requests_total{method="GET",route="/metrics",status="200"}' in text


def test_redis_down_gives_503_with_reason(
    settings: object, database_url: str, tmp_path: object
) -> None:
    dead = fast_settings(tmp_path, database_url, "redis://127.0.0.1:1/0")  # type: ignore[arg-type]
    resources = Resources.connect(dead, database_url, "redis://127.0.0.1:1/0")
    try:
        with LiveServer(create_app(resources)) as url:
            began = time.monotonic()
            ready = httpx.get(f"{url}/ready", timeout=20)
            assert ready.status_code == 503
            assert "redis unavailable" in ready.json()["detail"]
            cancel = httpx.post(
                f"{url}/v1/jobs/00000000-0000-0000-0000-000000000000/cancel", timeout=20
            )
            assert cancel.status_code == 404
            assert time.monotonic() - began < 15
    finally:
        resources.close()


def test_database_down_gives_503_with_reason(redis_url: str, tmp_path: object) -> None:
    bad_db = "postgresql://nobody@127.0.0.1:1/none"
    dead = fast_settings(tmp_path, bad_db, redis_url)  # type: ignore[arg-type]
    resources = Resources.connect(dead, bad_db, redis_url)
    try:
        with LiveServer(create_app(resources)) as url:
            began = time.monotonic()
            listed = httpx.get(f"{url}/v1/jobs", timeout=20)
            assert listed.status_code == 503
            assert listed.json()["detail"].startswith("database unavailable")
            assert listed.headers["retry-after"] == "5"
            assert httpx.get(f"{url}/ready", timeout=20).status_code == 503
            assert time.monotonic() - began < 15
    finally:
        resources.close()


def test_concurrent_clients_of_one_job_each_get_every_event(
    resources: Resources, api_url: str, start_worker: WorkerFactory
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    job = resources.jobs().enqueue("test.events", {"count": 30, "pause": 0.02})
    url = f"{api_url}/v1/jobs/{job.id}/events"

    def follow(start: int) -> list[int]:
        headers = {"Last-Event-ID": str(start)} if start else {}
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            return [int(e["id"]) for e in read_sse(response.iter_lines())]

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(follow, start) for start in (0, 0, 0, 1, 2, 0)]
        start_worker()
        results = [f.result(timeout=60) for f in futures]
    total = resources.jobs().get(job.id).event_seq
    for start, seen in zip((0, 0, 0, 1, 2, 0), results, strict=True):
        assert seen == list(range(start + 1, total + 1))


def test_gateway_headers_body_limit_and_cors(resources: Resources) -> None:
    settings = resources.settings.model_copy(
        update={
            "max_request_bytes": 8192,
            "max_json_bytes": 4096,
            "cors_origins": ["https://app.example"],
        }
    )
    limited = Resources(**{**resources.__dict__, "settings": settings})
    with LiveServer(create_app(limited)) as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"{url}/v1/jobs").headers["x-frame-options"] == "DENY"

        declared = httpx.post(f"{url}/v1/knowledge-bases", content=b"x" * 5000)
        assert declared.status_code == 413
        assert "CITELINE_MAX_JSON_BYTES" in declared.json()["detail"]
        # Uploads have their own limit.
        upload = httpx.post(
            f"{url}/v1/knowledge-bases/{uuid.uuid4()}/documents",
            files={"files": ("a.txt", b"z" * 9000)},
        )
        assert upload.status_code == 413
        assert "CITELINE_MAX_REQUEST_BYTES" in upload.json()["detail"]

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"y" * 1000

        streamed = httpx.post(f"{url}/v1/knowledge-bases", content=chunks())
        assert streamed.status_code == 413
        assert "content-length" not in {k.lower() for k in streamed.request.headers}

        allowed = httpx.options(
            f"{url}/v1/jobs",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = httpx.get(f"{url}/v1/jobs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in refused.headers
    with pytest.raises(ValueError, match="may not contain"):
        Settings(cors_origins=["*"])


FORM_BODIES = {
    "application/x-www-form-urlencoded": {"data": {"name": "planted"}},
    "multipart/form-data": {"files": {"files": ("planted.md", b"# Planted\n\nText.")}},
    "text/plain": {"content": b'{"name": "planted"}'},
}


@pytest.mark.parametrize("form", sorted(FORM_BODIES))
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_page_of_another_site_cannot_change_anything(
    resources: Resources, form: str, method: str
) -> None:
    """Local mode signs in whoever reaches the port, so a page elsewhere could make the browser
    send a form there; state-changing requests from another origin are refused."""
    kb = resources.knowledge().create("kept")
    targets = {
        "POST": f"/v1/knowledge-bases/{kb.id}/documents",
        "PUT": "/v1/workspaces/default/members/" + str(uuid.uuid4()),
        "PATCH": "/v1/users/" + str(uuid.uuid4()),
        "DELETE": f"/v1/knowledge-bases/{kb.id}",
    }
    body = FORM_BODIES[form]
    with LiveServer(create_app(resources)) as url, httpx.Client(base_url=url) as client:
        for evil in (
            {"Origin": "http://evil.example.com"},
            {"Origin": "null"},
            {"Referer": "http://evil.example.com/page.html"},
            {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        ):
            refused = client.request(method, targets[method], headers=evil, **body)  # type: ignore[arg-type]
            assert refused.status_code == 403, (evil, refused.text)
            assert refused.json()["title"] == "Cross-site request refused"
        assert resources.knowledge().get(kb.id).name == "kept"
        assert resources.knowledge().count_documents(kb.id) == {}
        own = client.request(method, targets[method], headers={"Origin": url}, **body)  # type: ignore[arg-type]
        assert "Cross-site" not in own.text


def test_non_browser_clients_and_configured_origins_are_not_refused(resources: Resources) -> None:
    settings = resources.settings.model_copy(update={"cors_origins": ["https://app.example"]})
    allowed = Resources(**{**resources.__dict__, "settings": settings})
    with LiveServer(create_app(allowed)) as url:
        plain = httpx.post(f"{url}/v1/knowledge-bases", json={"name": "cli"})
        assert plain.status_code == 201
        configured = httpx.post(
            f"{url}/v1/knowledge-bases",
            json={"name": "app"},
            headers={"Origin": "https://app.example"},
        )
        assert configured.status_code == 201
        read = httpx.get(f"{url}/v1/knowledge-bases", headers={"Origin": "http://evil.example"})
        assert read.status_code == 200  # reading is left to CORS: the page cannot see the answer
