"""Authentication and authorization against a live app in `required` mode: every endpoint
refuses missing and forged credentials, workspaces never see each other's data, viewers
cannot write, and tokens, keys, throttling and the audit log behave."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr

from citeline.answers.job import ANSWER_KIND
from citeline.answers.models import Conversation
from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.auth.accounts import Accounts
from citeline.auth.identify import check_bind
from citeline.auth.tokens import signing_key
from citeline.db.engine import unit_of_work
from citeline.errors import ConfigurationError
from citeline.knowledge.service import Upload
from citeline.knowledge.storage import scratch_dir
from citeline.reports.models import Report
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, fast_settings

PASSWORD = "correct horse battery"
PUBLIC = {
    "/health",
    "/ready",
    "/metrics",
    "/",
    "/v1/auth/config",
    "/v1/auth/token",
    "/v1/auth/logout",
    "/v1/auth/invitations/accept",
    "/v1/auth/oidc/login",
    "/v1/auth/oidc/callback",
}

NOT_LOADED = {"loaded": False, "loaded_on": 0, "load_seconds": None}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(tmp_path / "data", database_url, embedded_redis_url, auth="required")


@dataclass
class World:
    """Two workspaces with people and things in them."""

    url: str
    resources: Resources
    kb: str
    document: str
    job: str
    answer_job: str
    conversation: str
    beta_kb: str
    report: str

    def token(self, email: str, workspace: str | None = None) -> str:
        data = {"grant_type": "password", "username": email, "password": PASSWORD}
        if workspace:
            data["workspace"] = workspace
        response = httpx.post(f"{self.url}/v1/auth/token", data=data)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def as_(self, email: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token(email)}"}
        )


@pytest.fixture
def world(resources: Resources) -> Iterator[World]:
    system = resources.accounts()
    root = system.create_user(
        "root@example.com", PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    # A workspace always has an owner; the instance administrator owns both.
    system.create_workspace("Alpha", "alpha", owner_id=root.id)
    system.create_workspace("Beta", "beta", owner_id=root.id)
    for email, workspace, role, admin in [
        ("ada@example.com", "alpha", Role.admin, False),
        ("alice@example.com", "alpha", Role.member, False),
        ("vera@example.com", "alpha", Role.viewer, False),
        ("bob@example.com", "beta", Role.member, False),
    ]:
        system.create_user(email, PASSWORD, is_admin=admin, workspace_id=workspace, role=role)
    alpha = Access("system", "alpha", Role.owner, instance_admin=True)
    knowledge = resources.knowledge(alpha)
    kb = knowledge.create("handbook")
    scratch = scratch_dir(resources.settings.data_path / "files")
    upload = Upload.receive(io.BytesIO(b"# Leave\n\nTwenty days a year."), "leave.md", scratch)
    outcome = knowledge.add(kb.id, [upload])[0]
    assert outcome.document_id is not None and outcome.job_id is not None
    answer_job = resources.jobs(alpha).enqueue(ANSWER_KIND, {"query": "leave?"})
    with unit_of_work(resources.sessions) as session:
        conversation = Conversation(knowledge_base_id=kb.id, workspace_id="alpha", title="leave")
        session.add(conversation)
        session.flush()
        conversation_id = conversation.id
    beta_kb = resources.knowledge(Access("system", "beta", Role.owner)).create("beta-notes")
    with unit_of_work(resources.sessions) as session:
        report = Report(
            id=uuid.uuid4(),
            workspace_id="alpha",
            owner=None,
            topic="leave",
            instructions="",
            knowledge_base_ids=[str(kb.id)],
            model="report",
            target_sections=1,
            fixed_outline=False,
            status="partial",
            version=0,
        )
        session.add(report)
    with LiveServer(create_app(resources)) as url:
        yield World(
            url,
            resources,
            str(kb.id),
            str(outcome.document_id),
            str(outcome.job_id),
            str(answer_job.id),
            str(conversation_id),
            str(beta_kb.id),
            str(report.id),
        )


def _protected(world: World) -> list[tuple[str, str]]:
    """Every route of the app that is not public, with its path parameters filled in."""
    values = {
        "kb_id": world.kb,
        "document_id": world.document,
        "job_id": world.job,
        "conversation_id": world.conversation,
        "user_id": str(uuid.uuid4()),
        "key_id": str(uuid.uuid4()),
        "invitation_id": str(uuid.uuid4()),
        "model_id": "default",
        "workspace_id": "alpha",
        "name": "default",
        "alias": "default",
        "number": "1",
        "report_id": world.report,
        "session_id": str(uuid.uuid4()),
        "ref": str(uuid.uuid4()),
        "task_id": str(uuid.uuid4()),
        "agent_id": str(uuid.uuid4()),
        "server": str(uuid.uuid4()),
        "run_id": str(uuid.uuid4()),
    }
    schema = create_app(world.resources).openapi()
    routes = []
    for path, operations in schema["paths"].items():
        if path in PUBLIC:
            continue
        for method in operations:
            routes.append((method.upper(), path.format(**values)))
    assert len(routes) > 40
    return routes


def _forged(world: World) -> dict[str, str]:
    key = signing_key(world.resources.sessions, world.resources.settings)
    now = int(time.time())
    user_id = str(uuid.uuid4())
    claims = {"iss": "citeline", "sub": user_id, "ws": "alpha", "iat": now, "typ": "access"}
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({**claims, "exp": now + 600}).encode())
    return {
        "expired": jwt.encode({**claims, "exp": now - 5, "iat": now - 905}, key, "HS256"),
        "another key": jwt.encode({**claims, "exp": now + 600}, "not-the-key" * 4, "HS256"),
        "alg none": f"{header.decode()}.{body.rstrip(b'=').decode()}.",
        "garbage": "not-a-token",
        "revoked-looking api key": f"cl_{uuid.uuid4().hex}_nope",
    }


def test_every_protected_endpoint_refuses_missing_and_forged_credentials(world: World) -> None:
    forged = _forged(world)
    # The right key, a real user, but expired: the reason is given.
    for method, path in _protected(world):
        response = httpx.request(method, f"{world.url}{path}", timeout=10)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        for name, token in forged.items():
            response = httpx.request(
                method, f"{world.url}{path}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, (name, method, path, response.text)
    expired = httpx.get(
        f"{world.url}/v1/jobs", headers={"Authorization": f"Bearer {forged['expired']}"}
    )
    assert "expired" in expired.json()["detail"]
    basic = httpx.get(f"{world.url}/v1/jobs", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_an_expired_token_of_a_real_user_is_refused(world: World) -> None:
    key = signing_key(world.resources.sessions, world.resources.settings)
    user = Accounts(world.resources.sessions, Access.system()).by_email("alice@example.com")
    assert user is not None
    now = int(time.time())
    claims = {"iss": "citeline", "sub": str(user.id), "ws": "alpha", "typ": "access", "sid": "s"}
    fresh = jwt.encode({**claims, "iat": now, "exp": now + 60}, key, "HS256")
    stale = jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, key, "HS256")
    assert _get(world, "/v1/knowledge-bases", fresh).status_code == 200
    assert _get(world, "/v1/knowledge-bases", stale).status_code == 401


def _get(world: World, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{world.url}{path}", headers={"Authorization": f"Bearer {token}"})


def test_another_workspace_sees_nothing_of_alpha(world: World) -> None:
    kb, doc, job = world.kb, world.document, world.job
    reads = [
        f"/v1/knowledge-bases/{kb}",
        f"/v1/knowledge-bases/{kb}/documents",
        f"/v1/knowledge-bases/{kb}/documents/{doc}",
        f"/v1/knowledge-bases/{kb}/documents/{doc}/file",
        f"/v1/knowledge-bases/{kb}/documents/{doc}/preview",
        f"/v1/knowledge-bases/{kb}/search?q=leave",
        f"/v1/jobs/{job}",
        f"/v1/jobs/{job}/result",
        f"/v1/jobs/{job}/events",
        f"/job-status/{world.answer_job}",
        f"/result/{world.answer_job}",
        f"/v1/answers/{world.answer_job}",
        f"/v1/answers/{world.answer_job}/result",
        f"/v1/conversations/{world.conversation}",
        "/v1/workspaces/alpha/members",
        f"/v1/reports/{world.report}",
        f"/v1/reports/{world.report}/audit",
        f"/v1/reports/{world.report}/events",
        f"/v1/reports/{world.report}/export",
    ]
    with world.as_("bob@example.com") as bob:
        for path in reads:
            response = bob.get(path)
            assert response.status_code == 404, (path, response.text)
        assert bob.get("/v1/knowledge-bases").json()["knowledge_bases"][0]["id"] == world.beta_kb
        assert [j["id"] for j in bob.get("/v1/jobs").json()["jobs"]] == []
        assert bob.get("/v1/reports").json()["reports"] == []
        assert bob.get("/v1/conversations").json()["conversations"] == []
        alpha_kb = bob.post("/v1/reports", json={"topic": "leave", "knowledge_bases": [kb]})
        assert alpha_kb.status_code == 404
        writes = [
            ("POST", f"/v1/knowledge-bases/{kb}/documents"),
            ("DELETE", f"/v1/knowledge-bases/{kb}/documents/{doc}"),
            ("POST", f"/v1/knowledge-bases/{kb}/documents/{doc}/retry"),
            ("DELETE", f"/v1/conversations/{world.conversation}"),
            ("DELETE", f"/v1/knowledge-bases/{kb}"),
            ("POST", f"/v1/jobs/{job}/cancel"),
            ("PUT", "/v1/workspaces/alpha/members/" + str(uuid.uuid4())),
            ("POST", f"/v1/reports/{world.report}/cancel"),
            ("POST", f"/v1/reports/{world.report}/retry"),
            ("DELETE", f"/v1/reports/{world.report}"),
        ]
        for method, path in writes:
            response = bob.request(method, path, json={"role": "viewer"})
            assert response.status_code == 404, (method, path, response.text)
        asked = bob.post("/chat", json={"query": "leave?", "knowledge_base": kb})
        assert asked.status_code == 404
        following = bob.post(
            "/chat",
            json={
                "query": "and more?",
                "knowledge_base": "beta-notes",
                "conversation_id": world.conversation,
            },
        )
        assert following.status_code in (404, 409)
        alice_id = Accounts(world.resources.sessions, Access.system()).by_email("alice@example.com")
        assert alice_id is not None
        assert bob.get(f"/v1/users/{alice_id.id}").status_code == 404
        assert bob.patch(f"/v1/users/{alice_id.id}", json={"name": "x"}).status_code == 403
        assert [u["email"] for u in bob.get("/v1/users").json()["users"]] == [
            "bob@example.com",
            "root@example.com",  # its owner
        ]
        assert [w["id"] for w in bob.get("/v1/workspaces").json()["workspaces"]] == ["beta"]
        # Naming another workspace in a header is refused unless a member.
        switched = bob.get("/v1/knowledge-bases", headers={"X-Workspace": "alpha"})
        assert switched.status_code == 401
    with world.as_("alice@example.com") as alice:
        assert alice.get(f"/v1/knowledge-bases/{kb}/documents/{doc}/file").content.startswith(
            b"# Leave"
        )
        assert alice.get(f"/v1/jobs/{job}").status_code == 200
        assert alice.get(f"/v1/conversations/{world.conversation}").status_code == 200
        assert alice.get(f"/v1/knowledge-bases/{world.beta_kb}").status_code == 404


def test_a_viewer_reads_but_cannot_write(world: World) -> None:
    kb, doc, job = world.kb, world.document, world.job
    with world.as_("vera@example.com") as vera:
        assert vera.get(f"/v1/knowledge-bases/{kb}/documents").status_code == 200
        assert vera.get(f"/v1/knowledge-bases/{kb}/documents/{doc}/file").status_code == 200
        writes = [
            ("POST", "/v1/knowledge-bases", {"name": "mine"}),
            ("DELETE", f"/v1/knowledge-bases/{kb}/documents/{doc}", None),
            ("DELETE", f"/v1/knowledge-bases/{kb}", None),
            ("POST", f"/v1/jobs/{job}/cancel", None),
            ("POST", "/v1/api-keys", {"name": "k", "role": "viewer"}),
            ("POST", "/v1/users", {"email": "x@example.com", "password": PASSWORD}),
            ("POST", "/v1/models", {"name": "m", "provider": "openai", "model": "x"}),
            ("PUT", "/v1/models/default/routes", {"routes": [{"model": "default@1"}]}),
            ("DELETE", "/v1/models/default", None),
            ("GET", "/v1/audit", None),
            ("POST", "/v1/reports", {"topic": "leave", "knowledge_bases": [kb]}),
            ("POST", f"/v1/reports/{world.report}/retry", None),
            ("DELETE", f"/v1/reports/{world.report}", None),
        ]
        for method, path, body in writes:
            response = vera.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert (
                "viewer" in response.json()["detail"]
                or "administrator" in (response.json()["detail"])
            )
        upload = vera.post(
            f"/v1/knowledge-bases/{kb}/documents", files={"files": ("a.md", b"# A\n\ntext")}
        )
        assert upload.status_code == 403
    with world.as_("alice@example.com") as alice:
        assert alice.get(f"/v1/knowledge-bases/{kb}/documents").json()["documents"]
        assert alice.delete(f"/v1/knowledge-bases/{kb}").status_code == 403  # needs admin
        assert alice.post("/v1/knowledge-bases", json={"name": "mine"}).status_code == 201


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in(world: World) -> None:
    first = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "password", "username": "ALICE@example.com", "password": PASSWORD},
    ).json()
    assert first["workspace_id"] == "alpha" and first["role"] == "member"
    second = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert _get(world, "/v1/auth/me", rotated["access_token"]).json()["user"]["email"] == (
        "alice@example.com"
    )
    reuse = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reuse.status_code == 401 and "already used" in reuse.json()["detail"]
    after_theft = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert after_theft.status_code == 401
    # Logging out revokes a sign-in too.
    other = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "password", "username": "alice@example.com", "password": PASSWORD},
    ).json()
    out = httpx.post(f"{world.url}/v1/auth/logout", json={"refresh_token": other["refresh_token"]})
    assert out.status_code == 204
    refused = httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": other["refresh_token"]},
    )
    assert refused.status_code == 401


def test_api_keys_are_shown_once_scoped_and_revocable(world: World) -> None:
    with world.as_("ada@example.com") as ada:
        too_strong = ada.post("/v1/api-keys", json={"name": "ci", "role": "owner"})
        assert too_strong.status_code == 422
        made = ada.post("/v1/api-keys", json={"name": "ci", "role": "viewer"})
        assert made.status_code == 201, made.text
        secret = made.json()["key"]
        assert secret.startswith("cl_")
        listed = ada.get("/v1/api-keys").json()["api_keys"]
        assert [k["key"] for k in listed] == [None]
        key_id = made.json()["id"]
    with httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {secret}"}) as key:
        kbs = key.get("/v1/knowledge-bases").json()["knowledge_bases"]
        assert [kb["name"] for kb in kbs] == ["handbook"]
        assert key.post("/v1/knowledge-bases", json={"name": "x"}).status_code == 403
        assert key.get(f"/v1/knowledge-bases/{world.beta_kb}").status_code == 404
        assert key.get("/v1/knowledge-bases", headers={"X-Workspace": "beta"}).status_code == 401
    with world.as_("alice@example.com") as alice:
        assert alice.post("/v1/api-keys", json={"name": "x"}).status_code == 403
    with world.as_("bob@example.com") as bob:
        assert (
            bob.delete(f"/v1/api-keys/{key_id}").status_code == 403
        )  # a member of beta: no key powers at all
    with world.as_("ada@example.com") as ada:
        assert ada.delete(f"/v1/api-keys/{key_id}").json()["revoked_at"] is not None
        actions = [e["action"] for e in ada.get("/v1/audit").json()["events"]]
    assert {"api_key.create", "api_key.revoke"} <= set(actions)
    revoked = httpx.get(
        f"{world.url}/v1/knowledge-bases", headers={"Authorization": f"Bearer {secret}"}
    )
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_roles_members_and_the_audit_log(world: World) -> None:
    with world.as_("ada@example.com") as ada:
        alice = next(
            u for u in ada.get("/v1/users").json()["users"] if u["email"] == "alice@example.com"
        )
        assert {u["email"] for u in ada.get("/v1/users").json()["users"]} == {
            "ada@example.com",
            "alice@example.com",
            "vera@example.com",
            "root@example.com",
        }
        made_owner = ada.put(f"/v1/workspaces/alpha/members/{alice['id']}", json={"role": "owner"})
        assert made_owner.status_code == 403  # only owners make owners
        promoted = ada.put(f"/v1/workspaces/alpha/members/{alice['id']}", json={"role": "admin"})
        assert promoted.status_code == 200
        deleted = ada.delete(f"/v1/knowledge-bases/{world.kb}")
        assert deleted.status_code == 204
        events = ada.get("/v1/audit").json()["events"]
        assert ada.get("/v1/workspaces").json()["workspaces"][0]["id"] == "alpha"
    role_change = next(e for e in events if e["action"] == "member.role")
    assert role_change["detail"] == {"from": "member", "to": "admin"}
    assert any(e["action"] == "knowledge_base.delete" for e in events)
    assert all(e["workspace_id"] == "alpha" for e in events)
    with world.as_("alice@example.com") as alice:
        assert alice.get("/v1/audit").status_code == 200  # an admin now
    with world.as_("root@example.com") as root:
        everything = root.get("/v1/audit", params={"limit": 500}).json()["events"]
        assert {"alpha", "beta", "default"} <= {e["workspace_id"] for e in everything}
        ws = root.post("/v1/workspaces", json={"name": "Gamma Team"})
        assert ws.json()["id"] == "gamma-team"
        assert root.post("/v1/workspaces", json={"name": "Gamma Team"}).status_code == 409
        bad = root.post("/v1/users", json={"email": "short@example.com", "password": "short"})
        assert bad.status_code == 422 and "at least" in bad.json()["detail"]
        # Instance admins may act in any workspace.
        beta = root.get("/v1/knowledge-bases", headers={"X-Workspace": "beta"})
        assert [kb["id"] for kb in beta.json()["knowledge_bases"]] == [world.beta_kb]


def test_rate_limits_answer_429_with_headers(
    tmp_path: Path, database_url: str, embedded_redis_url: str, resources: Resources
) -> None:
    limited = fast_settings(
        tmp_path / "limited",
        database_url,
        embedded_redis_url,
        auth="required",
        rate_limit_user_per_minute=3,
    )
    Accounts(resources.sessions, Access.system()).create_user(
        "rita@example.com", PASSWORD, workspace_id="default"
    )
    own = Resources.connect(limited, database_url, embedded_redis_url)
    try:
        with LiveServer(create_app(own)) as url:
            token = httpx.post(
                f"{url}/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": "rita@example.com",
                    "password": PASSWORD,
                },
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            seen = [httpx.get(f"{url}/v1/jobs", headers=headers) for _ in range(4)]
    finally:
        own.close()
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in seen] == ["2", "1", "0", "0"]
    assert seen[0].headers["ratelimit-limit"] == "3"
    assert 0 < int(seen[3].headers["retry-after"]) <= 60
    assert "3 per minute" in seen[3].json()["detail"]


def test_local_mode_is_loopback_only(resources: Resources) -> None:
    for host in ("0.0.0.0", "192.168.1.4", "example.com"):
        with pytest.raises(ConfigurationError, match="loopback"):
            check_bind(resources.settings.model_copy(update={"auth": "local", "host": host}))
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(resources.settings.model_copy(update={"auth": "local", "host": host}))
    check_bind(resources.settings.model_copy(update={"auth": "required", "host": "0.0.0.0"}))
    local = resources.settings.model_copy(update={"auth": "local"})
    own = dataclasses.replace(resources, settings=local)
    with LiveServer(create_app(own)) as url:
        me = httpx.get(f"{url}/v1/auth/me").json()
        assert me["user"]["email"] == "local@localhost" and me["role"] == "owner"
        assert me["mode"] == "local"
        any_key = httpx.get(f"{url}/v1/auth/me", headers={"Authorization": "Bearer sk-unused"})
        assert any_key.json()["user"]["email"] == "local@localhost"  # what OpenAI clients send
        for ours in (f"cl_{uuid.uuid4().hex}_x", "a.b.c"):
            refused = httpx.get(f"{url}/v1/auth/me", headers={"Authorization": f"Bearer {ours}"})
            assert refused.status_code == 401
        rebound = httpx.get(f"{url}/v1/auth/me", headers={"Host": "attacker.example"})
        assert rebound.status_code == 401 and "localhost" in rebound.json()["detail"]


def test_model_aliases_belong_to_a_workspace(world: World) -> None:
    from citeline.llm.registry import ModelRegistry

    with world.as_("root@example.com") as root:
        made = root.post(
            "/v1/models", json={"name": "smol", "provider": "local", "model": "smollm2-135m"}
        )
        assert made.status_code == 201, made.text
        shared = root.put(
            "/v1/models/writer/routes", json={"routes": [{"model": "local@1"}], "shared": True}
        )
        assert shared.status_code == 200 and shared.json()["workspace"] is None
    with world.as_("alice@example.com") as alice:
        refused = alice.put("/v1/models/default/routes", json={"routes": [{"model": "smol@1"}]})
        assert refused.status_code == 403  # members use aliases; admins route them
    with world.as_("ada@example.com") as ada:
        not_shared = ada.put(
            "/v1/models/default/routes", json={"routes": [{"model": "smol@1"}], "shared": True}
        )
        assert not_shared.status_code == 403
        own = ada.put("/v1/models/default/routes", json={"routes": [{"model": "smol@1"}]})
        assert own.status_code == 200 and own.json()["workspace"] == "alpha"
        listed = {m["id"]: m for m in ada.get("/v1/models").json()["data"]}
        assert listed["default"]["routes"] == [{"model": "smol@1", "weight": 1.0, **NOT_LOADED}]
        assert listed["writer"]["workspace"] is None
    with world.as_("bob@example.com") as bob:
        listed = {m["id"]: m for m in bob.get("/v1/models").json()["data"]}
        assert listed["default"]["routes"] == [{"model": "local@1", "weight": 1.0, **NOT_LOADED}]
        assert bob.delete("/v1/models/default").status_code == 403
    sessions = world.resources.sessions
    alpha = ModelRegistry(sessions, Access("system", "alpha", Role.owner))
    beta = ModelRegistry(sessions, Access("system", "beta", Role.owner))
    assert alpha.resolve("default").version.label == "smol@1"
    assert beta.resolve("default").version.label == "local@1"
    assert ModelRegistry(sessions).resolve("default", workspace_id="alpha").version.label == (
        "smol@1"
    )
    with world.as_("ada@example.com") as ada:
        assert ada.delete("/v1/models/default").status_code == 204
        assert ada.delete("/v1/models/default").status_code == 404
    assert alpha.resolve("default").version.label == "local@1"  # the shared one again


def test_a_new_password_or_a_disabled_account_ends_every_sign_in(world: World) -> None:
    def sign_in(password: str = PASSWORD) -> dict[str, str]:
        response = httpx.post(
            f"{world.url}/v1/auth/token",
            data={"grant_type": "password", "username": "alice@example.com", "password": password},
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, str] = response.json()
        return tokens

    def refresh(token: str) -> httpx.Response:
        return httpx.post(
            f"{world.url}/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
        )

    first = sign_in()
    headers = {"Authorization": f"Bearer {first['access_token']}"}
    me = httpx.get(f"{world.url}/v1/auth/me", headers=headers).json()["user"]["id"]
    new_password = "an even better password"
    without = httpx.patch(
        f"{world.url}/v1/users/{me}", json={"password": new_password}, headers=headers
    )
    assert without.status_code == 403 and "current password" in without.json()["detail"]
    assert refresh(first["refresh_token"]).status_code == 200  # nothing changed
    second = sign_in()
    changed = httpx.patch(
        f"{world.url}/v1/users/{me}",
        json={"password": new_password, "current_password": PASSWORD},
        headers={"Authorization": f"Bearer {second['access_token']}"},
    )
    assert changed.status_code == 200
    # The other sign-in ends at once, its access token too; the one that changed it goes on.
    assert refresh(first["refresh_token"]).status_code == 401
    assert httpx.get(f"{world.url}/v1/auth/me", headers=headers).status_code == 401
    assert refresh(second["refresh_token"]).status_code == 200
    third = sign_in(new_password)
    with world.as_("root@example.com") as root:
        assert root.patch(f"/v1/users/{me}", json={"disabled": True}).status_code == 200
        assert root.patch(f"/v1/users/{me}", json={"is_admin": True}).json()["is_admin"]
    assert refresh(third["refresh_token"]).status_code == 401
    current = httpx.get(
        f"{world.url}/v1/auth/me", headers={"Authorization": f"Bearer {third['access_token']}"}
    )
    assert current.status_code == 401 and "disabled" in current.json()["detail"]
    with world.as_("root@example.com") as root:
        events = root.get("/v1/audit", params={"action": "user.update"}).json()["events"]
        myself = root.get("/v1/auth/me").json()["user"]["id"]
        assert root.patch(f"/v1/users/{myself}", json={"disabled": True}).status_code == 409
    assert [e["detail"] for e in events][-2:] == [{"disabled": True}, {"password": "changed"}]


def test_a_rotated_signing_key_verifies_until_the_next_rotation(resources: Resources) -> None:
    from citeline.auth.tokens import issue_access, read_access, rotate_signing_key, signing_keys
    from citeline.errors import Unauthorized

    settings = resources.settings
    user = uuid.uuid4()
    first = signing_keys(resources.sessions, settings)
    assert len(first) == 1
    old, _ = issue_access(first[0], user, "default", 60, "s1")
    rotate_signing_key(resources.sessions)
    second = signing_keys(resources.sessions, settings)
    assert second[1] == first[0] and second[0] != first[0]
    assert read_access(second, old).user_id == user
    new, _ = issue_access(second[0], user, "default", 60, "s1")
    assert read_access(second, new).user_id == user
    rotate_signing_key(resources.sessions)
    third = signing_keys(resources.sessions, settings)
    assert read_access(third, new).user_id == user
    with pytest.raises(Unauthorized, match="signature"):
        read_access(third, old)
    configured = settings.model_copy(
        update={"jwt_secret": SecretStr("k" * 40), "jwt_previous_secrets": [SecretStr("p" * 40)]}
    )
    assert signing_keys(resources.sessions, configured) == ["k" * 40, "p" * 40]
