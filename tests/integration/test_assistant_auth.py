"""The assistant in `required` mode: another workspace sees none of a conversation (404), a
viewer reads but cannot write (403), and the WebSocket authenticates like every request
(a header, or the `bearer.<token>` subprotocol a browser offers) and refuses other sites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin, Subprotocol

from citeline.api.app import create_app
from citeline.assistant.models import AssistantConversation, AssistantMessage
from citeline.auth.access import Role
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, fast_settings

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(tmp_path / "data", database_url, embedded_redis_url, auth="required")


@dataclass
class World:
    url: str
    conversation: str
    run: str

    def token(self, email: str) -> str:
        data = {"grant_type": "password", "username": email, "password": PASSWORD}
        response = httpx.post(f"{self.url}/v1/auth/token", data=data)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def as_(self, email: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(email)}"}
        return httpx.Client(base_url=self.url, headers=headers)

    def socket_url(self) -> str:
        return (
            self.url.replace("http://", "ws://")
            + f"/v1/assistant/conversations/{self.conversation}/ws"
        )


@pytest.fixture
def world(resources: Resources) -> Iterator[World]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    for email, workspace, role in [
        ("alice@example.com", "alpha", Role.member),
        ("mia@example.com", "alpha", Role.member),
        ("ada@example.com", "alpha", Role.admin),
        ("vera@example.com", "alpha", Role.viewer),
        ("bob@example.com", "beta", Role.member),
    ]:
        system.create_user(email, PASSWORD, workspace_id=workspace, role=role)
    with LiveServer(create_app(resources)) as url:
        world = World(url, "", "")
        with world.as_("alice@example.com") as alice:
            made = alice.post("/v1/assistant/conversations", json={"title": "alpha's"})
            assert made.status_code == 201, made.text
            world.conversation = made.json()["id"]
            sent = alice.post(
                f"/v1/assistant/conversations/{world.conversation}/messages",
                json={"content": "hello"},
            )
            assert sent.status_code == 202, sent.text
            world.run = sent.json()["run_id"]
        yield world


def test_another_workspace_sees_nothing_and_a_viewer_cannot_write(
    world: World, resources: Resources
) -> None:
    conversation, run = world.conversation, world.run
    with world.as_("bob@example.com") as bob:
        assert bob.get("/v1/assistant/conversations").json()["conversations"] == []
        for method, path in [
            ("GET", f"/v1/assistant/conversations/{conversation}"),
            ("GET", f"/v1/assistant/runs/{run}"),
            ("GET", f"/v1/assistant/runs/{run}/events"),
            ("POST", f"/v1/assistant/conversations/{conversation}/messages"),
            ("POST", f"/v1/assistant/runs/{run}/approve"),
            ("POST", f"/v1/assistant/runs/{run}/deny"),
            ("POST", f"/v1/assistant/runs/{run}/cancel"),
            ("DELETE", f"/v1/assistant/conversations/{conversation}"),
        ]:
            response = bob.request(method, path, json={"content": "mine now"})
            assert response.status_code == 404, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        with (
            pytest.raises(InvalidStatus),
            ws_connect(
                world.socket_url(),
                additional_headers={"Authorization": f"Bearer {world.token('bob@example.com')}"},
                open_timeout=10,
            ),
        ):
            pass
    with world.as_("vera@example.com") as vera:
        assert vera.get(f"/v1/assistant/conversations/{conversation}").status_code == 200
        assert vera.get(f"/v1/assistant/runs/{run}").status_code == 200
        for method, path, body in [
            ("POST", "/v1/assistant/conversations", {}),
            ("POST", f"/v1/assistant/conversations/{conversation}/messages", {"content": "x"}),
            ("POST", f"/v1/assistant/runs/{run}/approve", None),
            ("POST", f"/v1/assistant/runs/{run}/cancel", None),
            ("DELETE", f"/v1/assistant/conversations/{conversation}", None),
        ]:
            response = vera.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert "viewer" in response.json()["detail"]
    with resources.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AssistantConversation)) == 1
        assert session.scalar(select(func.count()).select_from(AssistantMessage)) == 1


def test_only_the_conversations_owner_or_an_admin_decides_on_its_tool_calls(
    world: World,
) -> None:
    # An approved call runs as the run's owner, with their own MCP credentials: another
    # member of the workspace may read the run but not let its calls run.
    for decision in ("approve", "deny"):
        with world.as_("mia@example.com") as mia:
            refused = mia.post(f"/v1/assistant/runs/{world.run}/{decision}")
        assert refused.status_code == 403, refused.text
        assert "only the person who started this conversation" in refused.json()["detail"]
        for who in ("alice@example.com", "ada@example.com"):  # past the check: nothing waits
            with world.as_(who) as client:
                response = client.post(f"/v1/assistant/runs/{world.run}/{decision}")
            assert response.status_code == 409, (who, response.text)


def test_the_websocket_authenticates_like_every_request(world: World) -> None:
    with pytest.raises(InvalidStatus) as refused, ws_connect(world.socket_url(), open_timeout=10):
        pass
    assert refused.value.response.status_code == 403
    token = world.token("alice@example.com")
    with (
        pytest.raises(InvalidStatus),
        ws_connect(
            world.socket_url(),
            additional_headers={"Authorization": f"Bearer {token}"},
            origin=Origin("http://evil.example"),
            open_timeout=10,
        ),
    ):
        pass
    # A browser offers the token as a subprotocol; the server picks `citeline`.
    with ws_connect(
        world.socket_url(),
        subprotocols=[Subprotocol("citeline"), Subprotocol(f"bearer.{token}")],
        open_timeout=10,
    ) as socket:
        assert socket.subprotocol == "citeline"
        socket.send(json.dumps({"type": "message", "content": "more"}))
        busy = json.loads(socket.recv(timeout=10))
        # No worker runs here: the first message's run is still queued.
        assert busy["type"] == "error" and busy["data"]["metadata"]["status"] == 409
        socket.send(json.dumps({"type": "message", "content": "x" * 100_000}))
        too_long = json.loads(socket.recv(timeout=10))
        assert too_long["data"]["metadata"]["status"] == 413
