"""MCP tools in assistant runs, on real workers: a destructive tool waits for a person's
approval, a read-only one runs at once, and the bundled local model calls `mcp-server-time`
and answers from its result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from citeline.auth import Access, Role
from citeline.auth.models import AuditEvent
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.assistant_model import AssistantModel
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse, wait_for
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.mcp.support import TIME_SERVER, HttpServer, http_mcp, stdio_commands

__all__ = ["http_mcp"]
ROOT = Access("system", "default", Role.owner, instance_admin=True)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        mcp_stdio_commands=stdio_commands(),
        llm_retry_base_seconds=0.01,
    )


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, AssistantModel]]:
    script = AssistantModel()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


def app(resources: Resources) -> Any:
    from citeline.api.app import create_app

    return create_app(resources)


def run_events(api: str, run: dict[str, Any], timeout: float = 120) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{api}{run['events_url']}", timeout=timeout) as stream:
        raw = read_sse(stream.iter_lines())
    kinds = {"token", "tool_request", "tool_result", "thinking", "error", "complete"}
    return [e for e in (json.loads(event["data"]) for event in raw) if e["type"] in kinds]


def start(api: str, content: str, **body: Any) -> dict[str, Any]:
    conversation = httpx.post(f"{api}/v1/assistant/conversations", json=body)
    assert conversation.status_code == 201, conversation.text
    sent = httpx.post(
        f"{api}/v1/assistant/conversations/{conversation.json()['id']}/messages",
        json={"content": content},
    )
    assert sent.status_code == 202, sent.text
    run: dict[str, Any] = sent.json()
    return run


def test_a_run_asks_before_a_destructive_mcp_tool_and_answers_from_another(
    resources: Resources,
    start_worker: WorkerFactory,
    model: tuple[FakeLLMServer, AssistantModel],
    http_mcp: HttpServer,
) -> None:
    server, script = model
    registry = resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=server.openai_base_url))
    registry.set_routes("assistant", [("scripted", 1.0)])
    servers = resources.mcp_servers(ROOT)
    servers.register("time", "stdio", command=TIME_SERVER)
    servers.register("lab", "http", url=http_mcp.url)
    script.plan = [
        ("lab__erase", {"path": "/notes/oslo"}),
        ("time__get_current_time", {"timezone": "Europe/Paris"}),
    ]
    start_worker(mode="inprocess")
    with LiveServer(app(resources)) as api:
        run = start(api, "Erase the Oslo notes, then tell me the time in Paris")
        run_id = run["run_id"]

        def waiting() -> bool:
            state = httpx.get(f"{api}/v1/assistant/runs/{run_id}").json()
            return bool(state["state"] == "awaiting_approval")

        wait_for(waiting, timeout=60)
        assert httpx.post(f"{api}/v1/assistant/runs/{run_id}/approve").status_code == 200
        seen = run_events(api, run)
    offered = {tool["function"]["name"] for tool in script.offered[0]}
    assert {"lab__erase", "lab__echo", "time__get_current_time"} <= offered
    requests = [e for e in seen if e["type"] == "tool_request"]
    assert [r["data"]["content"] for r in requests] == ["lab__erase", "time__get_current_time"]
    assert requests[0]["data"]["metadata"]["needs_approval"] is True
    assert requests[1]["data"]["metadata"]["needs_approval"] is False
    results = [e for e in seen if e["type"] == "tool_result"]
    assert results[0]["data"]["content"] == "erased /notes/oslo (1 so far)"
    assert '"timezone": "Europe/Paris"' in results[1]["data"]["content"]
    assert seen[-1]["type"] == "complete" and "Europe/Paris" in seen[-1]["data"]["content"]
    with resources.sessions() as session:
        audited = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "mcp.tool_call")
                .order_by(AuditEvent.id)
            )
        )
    assert [(a.target, a.outcome) for a in audited] == [
        ("lab__erase", "ok"),
        ("time__get_current_time", "ok"),
    ]
    assert {a.detail["run_id"] for a in audited} == {run_id}


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the 1.5B model on 2 shared cores: minutes per reply
def test_the_bundled_local_model_calls_mcp_server_time_and_uses_its_result(
    resources: Resources, start_worker: WorkerFactory
) -> None:
    resources.models().registry.ensure_defaults()  # `assistant` on the bundled model
    resources.mcp_servers(ROOT).register("time", "stdio", command=TIME_SERVER)
    start_worker(mode="inprocess", assistant_max_steps=2, llm_threads=2)
    with LiveServer(app(resources)) as api:
        run = start(
            api,
            "Use the time tool: what is the current time in the Asia/Tokyo timezone?",
            tools=["time__get_current_time"],
        )
        seen = run_events(api, run, timeout=900)
    kinds = [e["type"] for e in seen]
    assert "tool_result" in kinds and kinds[-1] == "complete", kinds
    request = next(e for e in seen if e["type"] == "tool_request")
    assert request["data"]["content"] == "time__get_current_time"
    assert request["data"]["metadata"]["arguments"] == {"timezone": "Asia/Tokyo"}
    result = next(e for e in seen if e["type"] == "tool_result")
    assert not result["data"]["metadata"]["is_error"], result
    told = json.loads(result["data"]["content"])
    hour = told["datetime"][11:16]  # HH:MM in Tokyo, from the server
    assert hour in seen[-1]["data"]["content"] or hour.lstrip("0") in seen[-1]["data"]["content"], (
        seen[-1]
    )
