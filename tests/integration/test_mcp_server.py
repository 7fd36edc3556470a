"""Citeline as an MCP server, driven by the official `mcp` client over streamable HTTP
against the app on uvicorn: the tools, workspaces and roles, refusals, bad arguments and
progress notifications."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.client import ConnectMode
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp_types import CallToolResult, TextContent

from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.knowledge.service import Upload
from citeline.knowledge.storage import scratch_dir
from citeline.mcp_server import tools
from citeline.resources import Resources
from citeline.settings import Settings
from mcp import Client, MCPError
from tests.conftest import LiveServer, WorkerFactory, fast_settings, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
# The document tests/integration/test_answers.py asks the bundled model about.
LIGHTHOUSE = b"""# The Lighthouse of Varnholm

The lighthouse of Varnholm was built in 1847 by the engineer Maren Tolvik.
Its lamp burned whale oil until 1902, when it was converted to electric light.

## The tower

The tower is 41 metres tall and is painted in red and white bands.
Visitors can climb its 212 steps from May to September.
"""
BETA_NOTES = b"# Beta notes\n\nThe beta team ships on Thursdays.\n"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(tmp_path / "data", database_url, embedded_redis_url, auth="required")


@dataclass
class World:
    url: str
    resources: Resources
    kb: str
    document: str
    beta_kb: str
    worker: subprocess.Popen[bytes]
    server: LiveServer
    app: FastAPI

    def token(self, email: str) -> str:
        data = {"grant_type": "password", "username": email, "password": PASSWORD}
        response = httpx.post(f"{self.url}/v1/auth/token", data=data)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def _ingest(
    resources: Resources, access: Access, name: str, files: dict[str, bytes]
) -> tuple[str, str]:
    knowledge = resources.knowledge(access)
    kb = knowledge.create(name)
    scratch = scratch_dir(resources.settings.data_path / "files")
    uploads = [Upload.receive(io.BytesIO(body), source, scratch) for source, body in files.items()]
    outcome = knowledge.add(kb.id, uploads)[0]
    assert outcome.document_id is not None
    return str(kb.id), str(outcome.document_id)


@pytest.fixture
def world(resources: Resources, start_worker: WorkerFactory) -> Iterator[World]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    for email, workspace, role in [
        ("ada@example.com", "alpha", Role.admin),
        ("vera@example.com", "alpha", Role.viewer),
        ("bob@example.com", "beta", Role.member),
    ]:
        system.create_user(email, PASSWORD, workspace_id=workspace, role=role)
    alpha = Access("system", "alpha", Role.owner)
    kb, document = _ingest(resources, alpha, "handbook", {"lighthouse.md": LIGHTHOUSE})
    beta = Access("system", "beta", Role.owner)
    beta_kb, _ = _ingest(resources, beta, "beta-notes", {"notes.md": BETA_NOTES})
    worker = start_worker("inprocess")

    def indexed() -> bool:
        bases = resources.knowledge().all()
        return all(base.chunk_count > 0 for base in bases) and len(bases) == 2

    wait_for(indexed, timeout=120, interval=0.3)
    app = create_app(resources)
    server = LiveServer(app)
    with server as url:
        yield World(url, resources, kb, document, beta_kb, worker, server, app)


@asynccontextmanager
async def connected(
    url: str, token: str | None = None, mode: ConnectMode = "auto"
) -> AsyncIterator[Client]:
    """The official client; `auto` speaks the 2026-07-28 protocol with Citeline, `legacy`
    the 2025 initialize handshake that most desktop clients still use."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(30, read=300)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


def test_tools_are_listed_with_schemas_and_read_only_hints(world: World) -> None:
    async def scenario() -> None:
        async with connected(world.url, world.token("ada@example.com")) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {
            "list_knowledge_bases",
            "list_documents",
            "search",
            "ask",
            "start_report",
        }
        for name in ("list_knowledge_bases", "list_documents", "search"):
            annotations = tools[name].annotations
            assert annotations is not None and annotations.read_only_hint is True, name
        for name in ("ask", "start_report"):
            annotations = tools[name].annotations
            assert annotations is not None and annotations.read_only_hint is False, name
            assert annotations.destructive_hint is False, name
        search = tools["search"]
        assert search.input_schema["required"] == ["query"]
        assert "passage" in (search.description or "")
        assert search.output_schema is not None
        assert tools["ask"].output_schema is not None
        assert "citations" in tools["ask"].output_schema["properties"]

    run(scenario)


def test_search_returns_passages_of_an_ingested_document(world: World) -> None:
    async def scenario() -> None:
        async with connected(world.url, world.token("ada@example.com")) as client:
            listed = structured(await client.call_tool("list_knowledge_bases", {}))
            documents = structured(
                await client.call_tool("list_documents", {"knowledge_base": "handbook"})
            )
            result = await client.call_tool(
                "search", {"query": "how many steps has the tower", "knowledge_base": world.kb}
            )
        assert [kb["name"] for kb in listed["knowledge_bases"]] == ["handbook"]
        assert listed["knowledge_bases"][0]["documents"] == 1
        assert [d["id"] for d in documents["documents"]] == [world.document]
        assert documents["documents"][0]["status"] == "ready"
        found = structured(result)
        passages = found["passages"]
        assert passages, found
        best = passages[0]
        assert best["document_id"] == world.document
        assert "212 steps" in best["text"]
        # The offsets are the passage's place in the document's extracted text.
        token = world.token("ada@example.com")
        preview = httpx.get(
            f"{world.url}/v1/knowledge-bases/{world.kb}/documents/{world.document}/preview",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert preview["text"][best["start"] : best["end"]] == best["text"]
        assert best["passage_id"]
        assert "212 steps" in text_of(result)

    run(scenario)


def test_each_caller_sees_only_its_own_workspace(world: World) -> None:
    async def scenario() -> None:
        async with connected(world.url, world.token("bob@example.com")) as bob:
            listed = structured(await bob.call_tool("list_knowledge_bases", {}))
            across = await bob.call_tool("search", {"query": "lamp", "knowledge_base": world.kb})
            documents = await bob.call_tool("list_documents", {"knowledge_base": world.kb})
            by_name = await bob.call_tool("list_documents", {"knowledge_base": "handbook"})
        assert [kb["name"] for kb in listed["knowledge_bases"]] == ["beta-notes"]
        for refused in (across, documents, by_name):
            assert refused.is_error and refused.structured_content is None
            assert "not found" in text_of(refused).lower()
            assert "1847" not in text_of(refused)

        async with connected(world.url, world.token("vera@example.com")) as vera:
            names = {tool.name for tool in (await vera.list_tools()).tools}
            listed = structured(await vera.call_tool("list_knowledge_bases", {}))
            found = structured(
                await vera.call_tool("search", {"query": "lamp", "knowledge_base": "handbook"})
            )
            report = await vera.call_tool(
                "start_report", {"topic": "lighthouses", "knowledge_bases": ["handbook"]}
            )
        assert "start_report" not in names and "search" in names
        assert [kb["name"] for kb in listed["knowledge_bases"]] == ["handbook"]
        assert found["passages"]
        assert report.is_error and "viewer" in text_of(report)

    run(scenario)
    with world.resources.sessions() as session:
        from citeline.auth.models import AuditEvent

        denied = session.query(AuditEvent).filter_by(action="request.denied").all()
    assert [event.target for event in denied] == ["MCP start_report"]


def test_an_api_key_works_and_a_report_starts(world: World) -> None:
    ada = httpx.Client(
        base_url=world.url, headers={"Authorization": f"Bearer {world.token('ada@example.com')}"}
    )
    with ada:
        made = ada.post("/v1/api-keys", json={"name": "claude", "role": "member"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]

        async def scenario() -> None:
            async with connected(world.url, key) as client:
                started = structured(
                    await client.call_tool(
                        "start_report",
                        {"topic": "Lighthouses", "knowledge_bases": ["handbook"], "sections": 1},
                    )
                )
            report = ada.get(f"/v1/reports/{started['report_id']}")
            assert report.status_code == 200, report.text
            assert started["url"] == f"{world.url}/#/reports/{started['report_id']}"
            assert started["api_url"] == f"{world.url}/v1/reports/{started['report_id']}"

        run(scenario)


def test_bad_arguments_give_clear_tool_errors(world: World) -> None:
    async def scenario() -> None:
        async with connected(world.url, world.token("ada@example.com")) as client:
            empty = await client.call_tool("search", {"query": "   ", "knowledge_base": world.kb})
            too_many = await client.call_tool(
                "search", {"query": "tower", "knowledge_base": world.kb, "limit": 500}
            )
            missing = await client.call_tool("search", {"knowledge_base": world.kb})
            unknown_kb = await client.call_tool(
                "list_documents", {"knowledge_base": "no-such-base"}
            )
            unknown_tool = await client.call_tool("delete_everything", {})
            # Still fine after all that.
            listed = structured(await client.call_tool("list_knowledge_bases", {}))
        assert empty.is_error and "query is empty" in text_of(empty)
        assert too_many.is_error and "limit" in text_of(too_many)
        assert missing.is_error and "query" in text_of(missing)
        assert unknown_kb.is_error and "no-such-base" in text_of(unknown_kb)
        assert unknown_tool.is_error and "delete_everything" in text_of(unknown_tool)
        assert listed["knowledge_bases"]

    run(scenario)


def test_without_credentials_it_is_401_problem_details(world: World) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        response = httpx.post(f"{world.url}/mcp", json=body, headers={**headers, **auth})
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["title"] == "Unauthorized"

    async def scenario() -> None:
        with pytest.raises(BaseExceptionGroup) as refused:
            async with connected(world.url) as client:
                await client.list_tools()
        assert refused.group_contains(MCPError)

    run(scenario)


def test_a_cross_site_post_is_refused(world: World) -> None:
    token = world.token("ada@example.com")
    response = httpx.post(
        f"{world.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "Authorization": f"Bearer {token}",
            "Origin": "https://evil.example",
            "Accept": "application/json, text/event-stream",
        },
    )
    assert response.status_code == 403
    assert response.json()["title"] == "Cross-site request refused"


def test_ask_reports_progress_and_says_when_nothing_answers_it(world: World) -> None:
    """A question the knowledge base cannot answer ends before any model runs, but it goes
    through the same job, events and progress as any answer; in both protocol eras."""
    token = world.token("vera@example.com")

    async def ask(mode: ConnectMode) -> list[tuple[float, float | None, str | None]]:
        reported: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append((progress, total, message))

        async with connected(world.url, token, mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool(
                "ask",
                {
                    "question": "What is the airspeed of an unladen swallow?",
                    "knowledge_base": "handbook",
                },
                progress_callback=on_progress,
            )
            version = client.protocol_version
        assert ("2026" in version) == (mode == "auto"), (mode, version)
        assert "ask" in names and "start_report" not in names
        answer = structured(result)
        assert answer["status"] == "not_found", answer
        assert answer["citations"] == []
        assert text_of(result).startswith("Not found")
        return reported

    for mode in ("auto", "legacy"):
        reported = anyio.run(ask, mode)
        messages = [message for _, _, message in reported]
        assert any(m and "passages" in m for m in messages), (mode, messages)
        # First the job to follow, should the stream be cut.
        assert (messages[0] or "").startswith("queued for a worker as answer job "), messages
        assert messages[-1] == "finished", mode
        values = [value for value, _, _ in reported]
        assert values == sorted(values) and len(set(values)) == len(values), mode


def test_an_ask_that_outlasts_its_wait_or_its_server_names_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no worker the answer stays queued: the call ends when its wait runs out, or when
    the server starts to stop (a replica going away), and says which job to follow."""
    os.killpg(world.worker.pid, signal.SIGTERM)
    world.worker.wait(30)
    token = world.token("ada@example.com")
    question = {"question": "When was the lighthouse of Varnholm built?"}

    async def ask(on_progress: ProgressFnT) -> CallToolResult:
        async with connected(world.url, token) as client:
            return await client.call_tool("ask", question, progress_callback=on_progress)

    async def ignore(progress: float, total: float | None, message: str | None) -> None:
        return None

    monkeypatch.setattr(tools, "ASK_WAIT_SECONDS", 1.0)
    waited = anyio.run(ask, ignore)
    assert waited.is_error and "still being written after 1 s" in text_of(waited), text_of(waited)
    monkeypatch.undo()

    loop = world.server.server.servers[0].get_loop()

    async def drain_when_queued(progress: float, total: float | None, message: str | None) -> None:
        if message and message.startswith("queued for a worker as answer job "):
            loop.call_soon_threadsafe(world.app.state.stream_hub.drain)

    drained = anyio.run(ask, drain_when_queued)
    assert drained.is_error and "stopping" in text_of(drained), text_of(drained)
    jobs = [re.findall(r"job (?:is )?([0-9a-f-]{36})", text_of(r)) for r in (waited, drained)]
    assert all(len(found) == 1 for found in jobs), jobs
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {token}"}) as api:
        for (job,) in jobs:
            assert api.get(f"/v1/answers/{job}").json()["status"] == "queued"


def test_local_mode_needs_no_token_on_loopback(settings: Settings, resources: Resources) -> None:
    local = settings.model_copy(update={"auth": "local"})
    assert local.database_url is not None and local.redis_url is not None
    opened = Resources.connect(local, local.database_url, local.redis_url)
    try:
        with LiveServer(create_app(opened)) as url:

            async def scenario() -> None:
                async with connected(url) as client:
                    listed = structured(await client.call_tool("list_knowledge_bases", {}))
                assert listed == {"knowledge_bases": []}

            run(scenario)
            # Local mode answers only requests addressed to a loopback name.
            response = httpx.post(
                f"{url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream", "Host": "evil.example"},
            )
        assert response.status_code == 401
        assert "localhost" in response.json()["detail"]
    finally:
        opened.close()


def test_ask_writes_a_cited_answer_while_reporting_progress(world: World) -> None:
    """The bundled model answers; every citation is the document's exact text."""
    token = world.token("ada@example.com")
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async def ask() -> CallToolResult:
        async with connected(world.url, token) as client:
            return await client.call_tool(
                "ask",
                {"question": "When was the lighthouse of Varnholm built?"},
                progress_callback=on_progress,
            )

    result = anyio.run(ask)
    answer = structured(result)
    stored = httpx.get(
        f"{world.url}/v1/answers/{answer['job_id']}/result",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    read = " | ".join(p["text"] for p in stored["passages"])
    assert answer["status"] == "answered", f"{stored.get('draft')!r} from {read!r}"
    assert answer["knowledge_base_id"] == world.kb
    assert answer["citations"], answer
    assert "1847" in answer["answer"]
    preview = httpx.get(
        f"{world.url}/v1/knowledge-bases/{world.kb}/documents/{world.document}/preview",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["text"]
    for citation in answer["citations"]:
        assert citation["document_id"] == world.document
        assert preview[citation["start"] : citation["end"]] == citation["text"]
        assert f"[{citation['marker']}]" in answer["answer"]
        assert citation["text"] in text_of(result)
    messages = [message or "" for _, _, message in reported]
    assert any(m.startswith("writing") for m in messages), messages
    assert messages[-1] == "finished"
    assert stored["answer"] == answer["answer"]


def test_an_allowed_origin_may_call_it_from_a_browser(settings: Settings) -> None:
    """With CITELINE_CORS_ORIGINS set, a browser MCP client there passes the preflight."""
    origin = "https://inspector.example"
    allowed = settings.model_copy(update={"auth": "local", "cors_origins": [origin]})
    assert allowed.database_url is not None and allowed.redis_url is not None
    opened = Resources.connect(allowed, allowed.database_url, allowed.redis_url)
    try:
        with LiveServer(create_app(opened)) as url:
            preflight = httpx.options(
                f"{url}/mcp",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type, "
                    "mcp-protocol-version, mcp-method, mcp-name",
                },
            )
            call = httpx.post(
                f"{url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Origin": origin, "Accept": "application/json, text/event-stream"},
            )
    finally:
        opened.close()
    assert preflight.status_code == 200, preflight.text
    assert "mcp-protocol-version" in preflight.headers["access-control-allow-headers"].lower()
    assert call.status_code == 200, call.text
    assert call.headers["access-control-allow-origin"] == origin
