"""The ask policy over the assistant's WebSocket, on a real worker and a real streamable HTTP
MCP server: a run that calls a destructive tool pauses with a `tool_request` event, a person
approves it over the socket (or denies it through the REST route) and the run goes on; the
socket carries exactly the events the SSE stream of the same run does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from citeline.api.app import create_app
from citeline.auth import Access, Role
from citeline.auth.models import AuditEvent
from citeline.llm.registry import NewVersion
from citeline.resources import Resources
from citeline.settings import Settings
from tests.assistant_model import AssistantModel
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.mcp.support import HttpServer, http_mcp

__all__ = ["http_mcp"]
ROOT = Access("system", "default", Role.owner, instance_admin=True)
ENDS = ("finished", "failed", "stopped")
TYPED = ("token", "tool_request", "tool_result", "thinking", "error", "complete")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
    )


@pytest.fixture
def api(resources: Resources, http_mcp: HttpServer) -> Iterator[tuple[str, AssistantModel]]:
    script = AssistantModel()
    with FakeLLMServer(default=Respond(script)) as fake:
        registry = resources.models().registry
        registry.ensure_defaults()
        registry.add_version(NewVersion("scripted", "openai", "m", base_url=fake.openai_base_url))
        registry.set_routes("assistant", [("scripted", 1.0)])
        resources.mcp_servers(ROOT).register("lab", "http", url=http_mcp.url)
        with LiveServer(create_app(resources)) as url:
            yield url, script


def until(socket: ClientConnection, done: Any, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Read messages into `seen` until one satisfies `done`; return it. Each read is bounded."""
    while True:
        message: dict[str, Any] = json.loads(socket.recv(timeout=60))
        seen.append(message)
        if done(message):
            return message


def over_sse(url: str, run_id: str) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{url}/v1/assistant/runs/{run_id}/events", timeout=60) as stream:
        return [json.loads(event["data"]) for event in read_sse(stream.iter_lines())]


def events_only(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's events, without the socket's own replies (`run`, `run_state`)."""
    return [m for m in seen if m["type"] not in ("run", "run_state")]


def asks(message: dict[str, Any]) -> bool:
    return (
        message["type"] == "tool_request" and message["data"]["metadata"]["needs_approval"] is True
    )


def test_a_run_paused_for_approval_is_approved_over_the_socket_or_denied_over_rest(
    api: tuple[str, AssistantModel], resources: Resources, start_worker: WorkerFactory
) -> None:
    url, script = api
    script.plan = [("lab__erase", {"path": "/notes/oslo"})]
    script.answer = "Done."
    start_worker(mode="inprocess")
    conversation = httpx.post(f"{url}/v1/assistant/conversations", json={}).json()["id"]
    socket_url = url.replace("http://", "ws://") + f"/v1/assistant/conversations/{conversation}/ws"
    with ws_connect(socket_url, open_timeout=10) as socket:
        # Approved over the socket.
        first: list[dict[str, Any]] = []
        socket.send(json.dumps({"type": "message", "content": "Erase the Oslo notes"}))
        run_id = until(socket, lambda m: m["type"] == "run", first)["data"]["run_id"]
        request = until(socket, asks, first)
        assert request["data"]["content"] == "lab__erase"
        assert request["data"]["metadata"]["policy"] == "ask"
        state = httpx.get(f"{url}/v1/assistant/runs/{run_id}").json()
        assert state["state"] == "awaiting_approval"
        assert [p["name"] for p in state["pending"]] == ["lab__erase"]
        socket.send(json.dumps({"type": "approve"}))
        reply = until(socket, lambda m: m["type"] == "run_state", first)
        assert reply["data"]["id"] == run_id
        until(socket, lambda m: m["type"] in ENDS, first)
        received = events_only(first)
        assert received == over_sse(url, run_id)
        (result,) = [e for e in received if e["type"] == "tool_result"]
        assert result["data"]["content"] == "erased /notes/oslo (1 so far)"
        assert not result["data"]["metadata"]["is_error"]
        assert received[-2]["type"] == "complete" and received[-1]["type"] == "finished"
        states = [e["data"]["metadata"]["state"] for e in received if e["type"] in TYPED]
        assert "awaiting_approval" in states
        assert states.index("awaiting_approval") < states.index("tool_execution")

        # Denied through the REST route while the socket follows the run.
        second: list[dict[str, Any]] = []
        socket.send(json.dumps({"type": "message", "content": "Erase them again"}))
        run_id = until(socket, lambda m: m["type"] == "run", second)["data"]["run_id"]
        until(socket, asks, second)
        denied = httpx.post(f"{url}/v1/assistant/runs/{run_id}/deny")
        assert denied.status_code == 200, denied.text
        until(socket, lambda m: m["type"] in ENDS, second)
        received = events_only(second)
        assert received == over_sse(url, run_id)
        (result,) = [e for e in received if e["type"] == "tool_result"]
        assert "did not allow" in result["data"]["content"]
        assert result["data"]["metadata"]["is_error"] is True
        assert received[-2]["type"] == "complete"

        # Nothing is pending now: a late approval over the socket is a clear error.
        socket.send(json.dumps({"type": "approve"}))
        late = until(socket, lambda m: m["type"] in ("error", "run_state"), [])
        assert late["type"] == "error" and late["data"]["metadata"]["status"] == 409
    with resources.sessions() as session:
        calls = list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "mcp.tool_call"))
        )
    assert [(c.target, c.outcome) for c in calls] == [("lab__erase", "ok")]  # once: approved
