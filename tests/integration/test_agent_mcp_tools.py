"""Agents and the agent builder see a workspace's MCP tools: a task's tool node calls a real
MCP server (`mcp-server-time`, stdio), and a tool that needs a person's approval ("ask") is
neither offered to the builder nor accepted in an agent's workflow."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from citeline.auth import Access, Role
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, WorkerFactory, fast_settings, wait_for
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
    )


def clock_flow(tool: str) -> dict[str, object]:
    return {
        "version": 1,
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "clock", "type": "tool", "tool": tool, "arguments": {"timezone": "UTC"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "clock"}, {"from": "clock", "to": "end"}],
    }


def test_an_agent_task_calls_an_mcp_tool_and_ask_tools_stay_out(
    resources: Resources, start_worker: WorkerFactory, http_mcp: HttpServer
) -> None:
    resources.models().registry.ensure_defaults()
    servers = resources.mcp_servers(ROOT)
    servers.register("time", "stdio", command=TIME_SERVER)
    servers.register("lab", "http", url=http_mcp.url)

    offered = {tool.name for source in resources.builder_tool_sources for tool in source("default")}
    assert "time__get_current_time" in offered
    assert "lab__erase" not in offered  # destructive: "ask", which an unattended agent cannot

    from citeline.api.app import create_app

    start_worker(mode="inprocess")
    with LiveServer(create_app(resources)) as api:
        refused = httpx.post(
            f"{api}/v1/agents",
            json={
                "name": "eraser",
                "system_prompt": "You erase.",
                "workflow": clock_flow("lab__erase"),
            },
        )
        assert refused.status_code == 422 and "lab__erase" in refused.text
        created = httpx.post(
            f"{api}/v1/agents",
            json={
                "name": "clock",
                "system_prompt": "You tell the time.",
                "workflow": clock_flow("time__get_current_time"),
            },
        )
        assert created.status_code == 201, created.text
        task = httpx.post(f"{api}/v1/agents/clock/tasks", json={"input": "the time"})
        assert task.status_code == 202, task.text
        task_id = task.json()["id"]

        def ended() -> dict[str, object] | None:
            found: dict[str, object] = httpx.get(f"{api}/v1/agents/tasks/{task_id}").json()
            return found if found["status"] in ("finished", "failed") else None

        done = wait_for(ended, timeout=90, interval=0.2)
    assert isinstance(done, dict) and done["status"] == "finished", done
    # The tool's result (the arguments name only the time zone).
    assert "datetime" in json.dumps(done["steps"])
