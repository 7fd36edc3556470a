"""Per-user credentials for an MCP server, in `required` mode against a real streamable HTTP
server that echoes the credentials each call reached it with: every user's calls carry their
own secret (never another's, never the workspace's for a per-user key), a user without one is
told to set it, the API never returns a value, values are encrypted at rest, bad input gets
problem details, and the audit log names who called."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from citeline.api.app import create_app
from citeline.auth import Access, Role
from citeline.auth.models import AuditEvent
from citeline.llm.registry import NewVersion
from citeline.mcp import ApprovingToolbox
from citeline.mcp.models import McpUserCredentials
from citeline.resources import Resources
from citeline.settings import Settings
from tests.assistant_model import AssistantModel
from tests.conftest import LiveServer, WorkerFactory, fast_settings, read_sse
from tests.fake_llm_server import FakeLLMServer, Respond
from tests.mcp.support import HttpServer

ROOT = Access("system", "alpha", Role.owner, instance_admin=True)
PASSWORD = "correct horse battery"
SHARED = "alpha-shared-tenant"
ALICE = "Bearer alice-own-secret-1"
MIA = "Bearer mia-own-secret-2"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        outbound_allowed_hosts=["127.0.0.1"],
        llm_retry_base_seconds=0.01,
    )


@pytest.fixture
def echo() -> Iterator[HttpServer]:
    server = HttpServer("tests.mcp.auth_echo_server").start()
    yield server
    server.stop()


@dataclass
class World:
    url: str
    resources: Resources
    clients: dict[str, httpx.Client]
    ids: dict[str, uuid.UUID]

    def __getitem__(self, who: str) -> httpx.Client:
        return self.clients[who]


@pytest.fixture
def world(resources: Resources) -> Iterator[World]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    ids = {}
    for who, workspace, role in [
        ("ada", "alpha", Role.admin),
        ("alice", "alpha", Role.member),
        ("mia", "alpha", Role.member),
        ("vera", "alpha", Role.viewer),
        ("bob", "beta", Role.admin),
    ]:
        ids[who] = system.create_user(
            f"{who}@example.com", PASSWORD, workspace_id=workspace, role=role
        ).id
    with LiveServer(create_app(resources)) as url:
        clients = {}
        for who in ids:
            workspace = "beta" if who == "bob" else "alpha"
            data = {
                "grant_type": "password",
                "username": f"{who}@example.com",
                "password": PASSWORD,
                "workspace": workspace,
            }
            token = httpx.post(f"{url}/v1/auth/token", data=data).json()["access_token"]
            clients[who] = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
        yield World(url, resources, clients, ids)
        for client in clients.values():
            client.close()


def problem(response: httpx.Response, status: int, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    detail: str = body["detail"]
    return detail


def register(world: World, echo: HttpServer) -> dict[str, Any]:
    body = {
        "name": "echo",
        "transport": "http",
        "url": echo.url,
        "headers": {"X-Tenant": SHARED},
        "user_headers": ["Authorization"],
    }
    created = world["ada"].post("/v1/mcp-servers", json=body)
    assert created.status_code == 201, created.text
    server: dict[str, Any] = created.json()
    assert server["user_header_names"] == ["Authorization"]
    assert server["header_names"] == ["X-Tenant"] and SHARED not in created.text
    return server


def toolbox(world: World, who: str) -> ApprovingToolbox:
    """What an assistant run that `who` started calls MCP tools with."""
    box = world.resources.assistant_toolbox("alpha", f"user:{world.ids[who]}")
    assert isinstance(box, ApprovingToolbox)
    return box


def audited(resources: Resources, action: str) -> list[AuditEvent]:
    # In the order things happened: each toolbox writes its calls' rows in batches of its own,
    # so ids follow the batches, and `at` is each call's own time.
    with resources.sessions() as session:
        rows = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.at, AuditEvent.id)
            )
        )
        session.expunge_all()
    return rows


def test_each_user_calls_with_their_own_secret_and_the_api_never_returns_one(
    world: World, echo: HttpServer
) -> None:
    server = register(world, echo)
    path = f"/v1/mcp-servers/{server['id']}/credentials"
    before = world["alice"].get(path)
    assert before.status_code == 200, before.text
    assert before.json()["complete"] is False
    assert before.json()["missing_headers"] == ["Authorization"]

    # Header names are matched regardless of case and stored as the server declared them.
    put = world["alice"].put(path, json={"headers": {"authorization": ALICE}})
    assert put.status_code == 200, put.text
    assert put.json()["header_names"] == ["Authorization"] and put.json()["complete"] is True
    assert world["mia"].put(path, json={"headers": {"Authorization": MIA}}).status_code == 200
    for who in ("alice", "mia", "ada", "vera"):
        for response in (
            world[who].get(path),
            world[who].get("/v1/mcp-servers"),
            world[who].get(f"/v1/mcp-servers/{server['id']}"),
        ):
            assert response.status_code == 200, response.text
            assert "own-secret" not in response.text and SHARED not in response.text
    assert world["mia"].get(path).json()["header_names"] == ["Authorization"]
    assert world["ada"].get(path).json()["complete"] is False  # ada set nothing

    with world.resources.sessions() as session:
        stored = list(session.scalars(select(McpUserCredentials)))
        session.expunge_all()
    assert {row.user_id for row in stored} == {world.ids["alice"], world.ids["mia"]}
    for row in stored:  # encrypted at rest
        assert "own-secret" not in row.secrets and "Authorization" not in row.secrets
        assert row.header_names == ["Authorization"]

    # Two users' runs at once, calls interleaved: each connection carries its own user's
    # secret and the workspace's shared header, and serves only that user.
    resources = world.resources
    alice_box, mia_box = toolbox(world, "alice"), toolbox(world, "mia")
    try:
        assert [t.name for t in alice_box.tools()] == ["echo__whoami"]
        assert [t.name for t in mia_box.tools()] == ["echo__whoami"]
        # Each user's credentials may show them other tools: each has a cached list of their own
        # (beside the last one seen by anyone, listed to a user who has no credentials yet).
        cached = list(resources.redis.scan_iter(f"citeline:mcp:tools:{server['id']}:user:*"))
        assert len(cached) == 2, cached
        # New credentials may show other tools: that user's list is read anew, the other kept.
        assert world["alice"].put(path, json={"headers": {"Authorization": ALICE}}).is_success
        left = list(resources.redis.scan_iter(f"citeline:mcp:tools:{server['id']}:user:*"))
        assert len(left) == 1, left
        for turn in range(3):
            for box, secret in ((alice_box, ALICE), (mia_box, MIA)):
                result = box.call("echo__whoami", {}, run_id=f"turn-{turn}")
                assert not result.is_error, result.text
                assert result.text == f"authorization={secret} tenant={SHARED}"
    finally:
        alice_box.close()
        mia_box.close()
    calls = audited(resources, "mcp.tool_call")
    assert [(c.actor, c.outcome) for c in calls] == [
        (f"user:{world.ids['alice']}", "ok"),
        (f"user:{world.ids['mia']}", "ok"),
    ] * 3
    assert {c.target for c in calls} == {"echo__whoami"}
    sets = audited(resources, "mcp_credentials.set")
    assert [s.actor for s in sets] == [f"user:{world.ids[w]}" for w in ("alice", "mia", "alice")]
    assert all(s.detail["keys"] == ["Authorization"] for s in sets)
    assert all("own-secret" not in json.dumps(s.detail) for s in [*sets, *calls])


def test_a_user_without_credentials_is_told_to_set_them_and_never_borrows_any(
    world: World, echo: HttpServer
) -> None:
    server = register(world, echo)
    path = f"/v1/mcp-servers/{server['id']}/credentials"
    assert world["alice"].put(path, json={"headers": {"Authorization": ALICE}}).status_code == 200
    resources = world.resources
    alice_box = toolbox(world, "alice")
    try:
        alice_box.tools()  # discovered (and cached) with alice's own credentials
        assert alice_box.call("echo__whoami", {}).text.startswith(f"authorization={ALICE}")
    finally:
        alice_box.close()

    # Mia has none: the tool is listed (from the cache: its name, never alice's description
    # or schema) but its call is refused with a message for her, and nothing reaches the
    # server with anyone's secret.
    mia_box = toolbox(world, "mia")
    try:
        (listed,) = mia_box.tools()
        assert listed.name == "echo__whoami" and "set your own credentials" in listed.description
        refused = mia_box.call("echo__whoami", {})
    finally:
        mia_box.close()
    assert refused.is_error and refused.notice is not None
    assert "needs your own credentials (Authorization not set)" in refused.notice
    assert "citeline mcp credentials set echo" in refused.notice
    assert "alice" not in refused.text and SHARED not in refused.text
    (denied,) = [c for c in audited(resources, "mcp.tool_call") if c.outcome == "denied"]
    assert denied.actor == f"user:{world.ids['mia']}"
    assert "needs your own credentials" in denied.detail["error"]

    # The tools page says the same to her; alice's cleared credentials are gone for good.
    detail = problem(world["mia"].get(f"/v1/mcp-servers/{server['id']}/tools?refresh=true"), 409)
    assert "needs your own credentials" in detail
    assert world["alice"].delete(path).status_code == 204
    assert world["alice"].delete(path).status_code == 204  # clearing again is harmless
    assert world["alice"].get(path).json()["missing_headers"] == ["Authorization"]
    again = toolbox(world, "alice")
    try:
        again.tools()
        after = again.call("echo__whoami", {})
    finally:
        again.close()
    assert after.is_error and after.notice and "Authorization not set" in after.notice
    cleared = audited(resources, "mcp_credentials.clear")
    assert [c.detail["cleared"] for c in cleared] == [True, False]

    # Removing the server removes everyone's credentials for it.
    assert world["mia"].put(path, json={"headers": {"Authorization": MIA}}).status_code == 200
    assert world["ada"].delete(f"/v1/mcp-servers/{server['id']}").status_code == 204
    with resources.sessions() as session:
        assert session.scalars(select(McpUserCredentials)).all() == []


def test_bad_credentials_requests_get_problem_details_and_store_nothing(
    world: World, echo: HttpServer
) -> None:
    server = register(world, echo)
    path = f"/v1/mcp-servers/{server['id']}/credentials"
    alice, ada = world["alice"], world["ada"]
    good = {"headers": {"Authorization": ALICE}}
    problem(alice.put(f"/v1/mcp-servers/{uuid.uuid4()}/credentials", json=good), 404)
    problem(alice.put("/v1/mcp-servers/nope/credentials", json=good), 404)
    problem(alice.get("/v1/mcp-servers/nope/credentials"), 404)
    problem(alice.delete(f"/v1/mcp-servers/{uuid.uuid4()}/credentials"), 404)
    # Not a member of the server's workspace: not found, as everything of another workspace.
    problem(world["bob"].put(path, json=good), 404)
    problem(world["bob"].get(path), 404)
    # Keys the registration did not declare per-user.
    detail = problem(alice.put(path, json={"headers": {"X-Tenant": "mine"}}), 422, "headers")
    assert "'X-Tenant' is not one of this server's per-user headers (Authorization)" in detail
    assert "(none)" in problem(alice.put(path, json={"env": {"TOKEN": "x"}}), 422, "env")
    problem(alice.put(path, json={}), 422, "headers")
    problem(alice.put(path, json={"headers": {"Authorization": "  "}}), 422, "headers")
    problem(alice.put(path, json={"headers": {"Authorization": "a\r\nb"}}), 422, "headers")
    problem(alice.put(path, json={"headers": {"Authorization": 5}}), 422)
    problem(alice.put(path, json={**good, "extra": 1}), 422)

    # A server whose secrets are all the workspace's takes no per-user values.
    plain = {"name": "plain", "transport": "http", "url": echo.url}
    created = ada.post("/v1/mcp-servers", json=plain)
    assert created.status_code == 201 and created.json()["user_header_names"] == []
    detail = problem(alice.put("/v1/mcp-servers/plain/credentials", json=good), 422, "headers")
    assert "declares no per-user keys" in detail

    # An API key is no person: it has no credentials of its own.
    made = ada.post("/v1/api-keys", json={"name": "ci", "role": "member"})
    assert made.status_code == 201, made.text
    with httpx.Client(
        base_url=world.url, headers={"Authorization": f"Bearer {made.json()['key']}"}
    ) as key:
        assert "not to an API key" in problem(key.put(path, json=good), 403)

    # Registrations that mix up per-user and workspace keys.
    http = {"name": "mixed", "transport": "http", "url": echo.url}
    both = {**http, "headers": {"Authorization": "Bearer team"}, "user_headers": ["authorization"]}
    assert "both a workspace value" in problem(
        ada.post("/v1/mcp-servers", json=both), 422, "user_headers"
    )
    problem(ada.post("/v1/mcp-servers", json={**http, "user_env": ["TOKEN"]}), 422, "user_env")
    problem(ada.post("/v1/mcp-servers", json={**http, "user_headers": ["Bad Name"]}), 422)
    twice = {**http, "user_headers": ["Authorization", "AUTHORIZATION"]}
    assert "listed twice" in problem(ada.post("/v1/mcp-servers", json=twice), 422)

    with world.resources.sessions() as session:
        assert session.scalars(select(McpUserCredentials)).all() == []
    names = [s["name"] for s in ada.get("/v1/mcp-servers").json()["servers"]]
    assert names == ["echo", "plain"]


@pytest.fixture
def model() -> Iterator[tuple[FakeLLMServer, AssistantModel]]:
    script = AssistantModel()
    with FakeLLMServer(default=Respond(script)) as server:
        yield server, script


def run_events(client: httpx.Client, content: str) -> list[dict[str, Any]]:
    conversation = client.post("/v1/assistant/conversations", json={})
    assert conversation.status_code == 201, conversation.text
    sent = client.post(
        f"/v1/assistant/conversations/{conversation.json()['id']}/messages",
        json={"content": content},
    )
    assert sent.status_code == 202, sent.text
    with client.stream("GET", sent.json()["events_url"], timeout=120) as stream:
        raw = read_sse(stream.iter_lines())
    kinds = {"token", "tool_request", "tool_result", "thinking", "error", "complete"}
    return [e for e in (json.loads(event["data"]) for event in raw) if e["type"] in kinds]


def test_assistant_runs_use_their_owners_credentials_and_tell_one_without_them(
    world: World,
    echo: HttpServer,
    model: tuple[FakeLLMServer, AssistantModel],
    start_worker: WorkerFactory,
) -> None:
    fake, script = model
    registry = world.resources.models().registry
    registry.ensure_defaults()
    registry.add_version(NewVersion("scripted", "openai", "m", base_url=fake.openai_base_url))
    registry.set_routes("assistant", [("scripted", 1.0)])
    server = register(world, echo)
    path = f"/v1/mcp-servers/{server['id']}/credentials"
    for who, secret in (("alice", ALICE), ("mia", MIA)):
        assert world[who].put(path, json={"headers": {"Authorization": secret}}).status_code == 200
    script.plan = [("echo__whoami", {})]
    script.answer = "Checked."
    start_worker(mode="inprocess")

    for who, secret in (("alice", ALICE), ("mia", MIA), ("alice", ALICE)):
        seen = run_events(world[who], "Who am I to the echo server?")
        (result,) = [e for e in seen if e["type"] == "tool_result"]
        assert result["data"]["content"] == f"authorization={secret} tenant={SHARED}", seen
        assert not [e for e in seen if e["type"] == "error"] and seen[-1]["type"] == "complete"

    # Ada (the admin who registered the server) set nothing of her own: an error event tells
    # her what to do, the model is told the call failed, and the conversation goes on.
    seen = run_events(world["ada"], "Who am I to the echo server?")
    (error,) = [e for e in seen if e["type"] == "error"]
    assert "needs your own credentials (Authorization not set)" in error["data"]["content"]
    (result,) = [e for e in seen if e["type"] == "tool_result"]
    assert result["data"]["metadata"]["is_error"] is True
    assert "own-secret" not in result["data"]["content"]
    assert seen[-1]["type"] == "complete"
    actors = [(c.actor, c.outcome) for c in audited(world.resources, "mcp.tool_call")]
    assert actors == [
        (f"user:{world.ids['alice']}", "ok"),
        (f"user:{world.ids['mia']}", "ok"),
        (f"user:{world.ids['alice']}", "ok"),
        (f"user:{world.ids['ada']}", "denied"),
    ]


@pytest.mark.slow
def test_the_cli_registers_per_user_keys_and_sets_shows_and_clears_credentials(
    world: World, echo: HttpServer, tmp_path: Path
) -> None:
    from tests.e2e.test_cli import Cli

    def signed_in(who: str) -> Cli:
        cli = Cli(tmp_path / who, CITELINE_URL=world.url)
        cli.ok("login", "--email", f"{who}@example.com", "--password", PASSWORD)
        return cli

    ada, alice = signed_in("ada"), signed_in("alice")
    added = ada.ok(
        "mcp", "add", "echo", "--url", echo.url,
        "--header", f"X-Tenant: {SHARED}", "--user-header", "Authorization",
    )  # fmt: skip
    assert added.startswith("added echo (")
    assert alice.ok("mcp", "credentials", "show", "echo").splitlines() == [
        "set: none",
        "missing: Authorization",
    ]
    # A bare name asks for the value without echoing it (here from standard input).
    typed = alice("mcp", "credentials", "set", "echo", "--header", "Authorization", stdin=ALICE)
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.endswith("set: Authorization\nmissing: none\n"), typed.stdout
    assert "own-secret" not in typed.stdout + typed.stderr
    shown = alice.ok("mcp", "credentials", "show", "echo", "--json")
    assert json.loads(shown)["complete"] is True and "own-secret" not in shown
    box = toolbox(world, "alice")
    try:
        box.tools()
        assert box.call("echo__whoami", {}).text == f"authorization={ALICE} tenant={SHARED}"
    finally:
        box.close()

    wrong = alice("mcp", "credentials", "set", "echo", "--header", "X-Tenant: mine")
    assert wrong.returncode == 2 and "per-user headers (Authorization)" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    missing = alice("mcp", "credentials", "show", "nope")
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert alice.ok("mcp", "credentials", "clear", "echo").strip() == (
        "cleared your credentials for echo"
    )
    assert alice.ok("mcp", "credentials", "show", "echo").startswith("set: none")


def test_a_stdio_server_is_started_with_each_users_own_variables(
    world: World, resources: Resources
) -> None:
    script = Path(__file__).parents[1] / "mcp" / "auth_echo_server.py"
    resources.settings = resources.settings.model_copy(
        update={"mcp_stdio_commands": [sys.executable]}
    )
    resources.mcp_servers(ROOT).register(
        "env",
        "stdio",
        command=sys.executable,
        args=[str(script)],
        env={"TEAM": "alpha"},
        user_env=["API_TOKEN"],
    )
    path = "/v1/mcp-servers/env/credentials"
    # Names are the server's: an environment variable's case counts, and headers are refused.
    assert "per-user variables (API_TOKEN)" in problem(
        world["alice"].put(path, json={"env": {"api_token": "x"}}), 422, "env"
    )
    problem(world["alice"].put(path, json={"headers": {"API_TOKEN": "x"}}), 422, "headers")
    for who in ("alice", "mia"):
        put = world[who].put(path, json={"env": {"API_TOKEN": f"{who}-token"}})
        assert put.status_code == 200, put.text
        assert put.json()["env_names"] == ["API_TOKEN"] and f"{who}-token" not in put.text
    boxes = {who: toolbox(world, who) for who in ("alice", "mia", "ada")}
    try:
        heard = {}
        for who, box in boxes.items():
            assert [t.name for t in box.tools()] == ["env__whoami"]
            heard[who] = box.call("env__whoami", {})
    finally:
        for box in boxes.values():
            box.close()
    assert heard["alice"].text == "api_token=alice-token team=alpha"
    assert heard["mia"].text == "api_token=mia-token team=alpha"
    assert heard["ada"].is_error and heard["ada"].notice is not None
    assert "API_TOKEN not set" in heard["ada"].notice
