"""Calls into Citeline's own MCP server (`/mcp`), made with the official `mcp` client over
streamable HTTP against the app on uvicorn: each one is audited (who, which tool, argument
digest, duration, outcome) whether it succeeds, fails or is refused, and each caller's calls
of each tool are rate limited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp_types import CallToolResult, TextContent
from sqlalchemy import select

from citeline.api.app import create_app
from citeline.auth import Role
from citeline.auth.models import AuditEvent
from citeline.mcp import argument_digest
from citeline.mcp_server.guard import ACTION
from citeline.resources import Resources
from citeline.settings import Settings
from mcp import Client
from tests.conftest import LiveServer, fast_settings, wait_for

PASSWORD = "correct horse battery"
LIMIT = 4


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        mcp_server_tool_calls_per_minute=LIMIT,
    )


@dataclass
class World:
    url: str
    resources: Resources
    tokens: dict[str, str]
    subjects: dict[str, str]


@pytest.fixture
def world(resources: Resources) -> Iterator[World]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    subjects = {}
    for who, role in (("ada", Role.admin), ("vera", Role.viewer)):
        user = system.create_user(f"{who}@example.com", PASSWORD, workspace_id="alpha", role=role)
        subjects[who] = f"user:{user.id}"
    with LiveServer(create_app(resources)) as url:
        tokens = {}
        for who in subjects:
            data = {"grant_type": "password", "username": f"{who}@example.com"}
            response = httpx.post(f"{url}/v1/auth/token", data={**data, "password": PASSWORD})
            tokens[who] = response.json()["access_token"]
        yield World(url, resources, tokens, subjects)


@asynccontextmanager
async def connected(url: str, token: str) -> AsyncIterator[Client]:
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def audited(resources: Resources, count: int) -> list[AuditEvent]:
    """The endpoint's audit rows, once `count` are written (beside the calls, so a little
    after them)."""

    def rows() -> list[AuditEvent]:
        with resources.sessions() as session:
            found = list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == ACTION).order_by("id")
                )
            )
            session.expunge_all()
        return found

    wait_for(lambda: len(rows()) >= count, timeout=10)
    return rows()


def test_every_call_is_audited_with_who_what_and_how_it_went(world: World) -> None:
    search = {"query": "lamp", "knowledge_base": "no-such-base"}
    report = {"topic": "lighthouses", "knowledge_bases": ["handbook"]}

    async def scenario() -> None:
        async with connected(world.url, world.tokens["ada"]) as ada:
            listed = await ada.call_tool("list_knowledge_bases", {})
            assert not listed.is_error and listed.structured_content == {"knowledge_bases": []}
            missing = await ada.call_tool("search", search)
            assert missing.is_error and "no-such-base" in text_of(missing)
        async with connected(world.url, world.tokens["vera"]) as vera:
            refused = await vera.call_tool("start_report", report)
            assert refused.is_error and "viewer" in text_of(refused)

    anyio.run(scenario)
    rows = audited(world.resources, 3)
    ada, vera = world.subjects["ada"], world.subjects["vera"]
    assert [(r.actor, r.target, r.outcome, r.workspace_id) for r in rows] == [
        (ada, "list_knowledge_bases", "ok", "alpha"),
        (ada, "search", "failed", "alpha"),
        (vera, "start_report", "failed", "alpha"),
    ]
    assert rows[0].detail["arguments_sha256"] == argument_digest({})
    assert rows[1].detail["arguments_sha256"] == argument_digest(search)
    assert all(r.detail["duration_ms"] >= 0 and r.client == "127.0.0.1" for r in rows)
    assert "error" not in rows[0].detail
    assert "no-such-base" in rows[1].detail["error"] and "viewer" in rows[2].detail["error"]
    assert "lamp" not in str(rows[1].detail)  # arguments only as their digest


def test_each_callers_calls_of_each_tool_are_rate_limited(world: World) -> None:
    async def scenario() -> None:
        async with connected(world.url, world.tokens["ada"]) as ada:
            results = [await ada.call_tool("list_knowledge_bases", {}) for _ in range(LIMIT + 1)]
            # Another tool has a count of its own.
            other = await ada.call_tool("list_documents", {"knowledge_base": "none-here"})
        assert [r.is_error for r in results] == [False] * LIMIT + [True]
        refused = text_of(results[-1])
        assert f"the limit is {LIMIT} calls per minute; try again in" in refused
        assert "list_knowledge_bases" in refused
        assert "Rate limited" not in text_of(other)
        # Another caller has a count of their own.
        async with connected(world.url, world.tokens["vera"]) as vera:
            theirs = await vera.call_tool("list_knowledge_bases", {})
        assert not theirs.is_error

    anyio.run(scenario)
    outcomes = [(r.actor, r.target, r.outcome) for r in audited(world.resources, LIMIT + 3)]
    ada, vera = world.subjects["ada"], world.subjects["vera"]
    assert outcomes == [
        *[(ada, "list_knowledge_bases", "ok")] * LIMIT,
        (ada, "list_knowledge_bases", "denied"),
        (ada, "list_documents", "failed"),
        (vera, "list_knowledge_bases", "ok"),
    ]
