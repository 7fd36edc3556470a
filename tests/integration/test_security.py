"""What a red team found, closed: keys bounded by their maker, membership with consent,
labels instead of other people's ids, limits on headers and bodies, throttling that slows an
attacker but not the account's owner, revocation that takes effect at once, an owner for
every workspace, and model endpoints that cannot point into the network.

Runs against a live app in `required` mode behind a trusted proxy (127.0.0.1), so a test can
speak from several client addresses with `X-Forwarded-For`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citeline.errors import InvalidInput
from citeline.settings import Settings
from tests.conftest import fast_settings
from tests.integration.test_auth import PASSWORD, World, world

__all__ = ["world"]  # the fixture, shared with test_auth

ATTACKER = {"X-Forwarded-For": "203.0.113.9"}
OWNER_HOME = {"X-Forwarded-For": "198.51.100.4"}
OUTSIDER = "someone outside this workspace"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        trusted_proxies=["127.0.0.1"],
    )


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for client in made:
        client.close()


def bearer(world: World, secret: str, clients: list[httpx.Client]) -> httpx.Client:
    client = httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {secret}"})
    clients.append(client)
    return client


def user_id(world: World, email: str) -> str:
    found = world.resources.accounts().by_email(email)
    assert found is not None
    return str(found.id)


def sign_in(
    world: World, email: str, password: str = PASSWORD, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{world.url}/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
        headers=headers,
    )


def test_a_key_acts_with_at_most_its_makers_current_authority(
    world: World, clients: list[httpx.Client]
) -> None:
    ada, alice = user_id(world, "ada@example.com"), user_id(world, "alice@example.com")
    with world.as_("ada@example.com") as as_ada:
        made = as_ada.post(
            "/v1/api-keys",
            json={"name": "ops", "role": "admin", "scopes": ["api_keys", "members"]},
        )
        assert made.status_code == 201, made.text
        ops_id, ops_secret = made.json()["id"], made.json()["key"]
        plain = as_ada.post("/v1/api-keys", json={"name": "plain", "role": "admin"}).json()
    ops, plain_key = bearer(world, ops_secret, clients), bearer(world, plain["key"], clients)

    # Keys make keys and manage members only when their scopes say so.
    refused = plain_key.post("/v1/api-keys", json={"name": "child", "role": "viewer"})
    assert refused.status_code == 403 and "'api_keys' scope" in refused.json()["detail"]
    demote = plain_key.put(f"/v1/workspaces/alpha/members/{alice}", json={"role": "viewer"})
    assert demote.status_code == 403 and "'members' scope" in demote.json()["detail"]
    wider = ops.post("/v1/api-keys", json={"name": "w", "role": "owner"})
    assert wider.status_code == 422
    minted = ops.post(
        "/v1/api-keys", json={"name": "child", "role": "admin", "scopes": ["members"]}
    )
    assert minted.status_code == 201, minted.text
    assert minted.json()["parent_id"] == ops_id
    child = bearer(world, minted.json()["key"], clients)
    grandchild = child.post("/v1/api-keys", json={"name": "gc", "role": "viewer"})
    assert grandchild.status_code == 403

    # The owner demotes the maker: every key of theirs drops to viewer at once.
    with world.as_("root@example.com") as root:
        assert root.put(f"/v1/workspaces/alpha/members/{ada}", json={"role": "viewer"}).is_success
        assert ops.get("/v1/knowledge-bases").status_code == 200
        assert ops.post("/v1/knowledge-bases", json={"name": "x"}).status_code == 403
        assert ops.post("/v1/api-keys", json={"name": "more", "role": "viewer"}).status_code == 403
        promote = ops.put(f"/v1/workspaces/alpha/members/{alice}", json={"role": "admin"})
        assert promote.status_code == 403

        # Disabled: no key works; enabled again: they work with what the maker has now.
        assert root.patch(f"/v1/users/{ada}", json={"disabled": True}).is_success
        off = ops.get("/v1/knowledge-bases")
        assert off.status_code == 401 and "disabled" in off.json()["detail"]
        assert root.patch(f"/v1/users/{ada}", json={"disabled": False}).is_success
        assert ops.get("/v1/knowledge-bases").status_code == 200

        # Removed from the workspace: the keys stop.
        assert root.delete(f"/v1/workspaces/alpha/members/{ada}").status_code == 204
        gone = child.get("/v1/knowledge-bases")
        assert gone.status_code == 401 and "no longer a member" in gone.json()["detail"]
        assert root.put(f"/v1/workspaces/alpha/members/{ada}", json={"role": "admin"}).is_success
        assert child.get("/v1/knowledge-bases").status_code == 200

    # Revoking a key revokes every key minted from it.
    with world.as_("ada@example.com") as as_ada:
        assert as_ada.delete(f"/v1/api-keys/{ops_id}").is_success
    revoked = child.get("/v1/knowledge-bases")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert plain_key.get("/v1/knowledge-bases").status_code == 200

    # Deleted maker: no key of theirs is valid.
    with world.as_("root@example.com") as root:
        assert root.delete(f"/v1/users/{ada}").status_code == 204
        assert plain_key.get("/v1/knowledge-bases").status_code == 401
        denied = root.get("/v1/audit", params={"action": "request.denied"}).json()["events"]
    refusals = {(e["target"], e["outcome"]) for e in denied}
    assert ("POST /v1/api-keys", "denied") in refusals
    assert ("PUT /v1/workspaces/{workspace_id}/members/{user_id}", "denied") in refusals


def test_joining_a_workspace_needs_the_persons_consent(world: World) -> None:
    bob = user_id(world, "bob@example.com")
    with world.as_("ada@example.com") as ada:
        direct = ada.put(f"/v1/workspaces/alpha/members/{bob}", json={"role": "member"})
        ghost = ada.put(f"/v1/workspaces/alpha/members/{uuid.uuid4()}", json={"role": "member"})
        assert direct.status_code == ghost.status_code == 403
        assert direct.json()["detail"] == ghost.json()["detail"]
        assert "invite" in direct.json()["detail"]
        existing = ada.post("/v1/users", json={"email": "bob@example.com", "password": PASSWORD})
        fresh = ada.post("/v1/users", json={"email": "nobody@example.com", "password": PASSWORD})
        assert existing.status_code == fresh.status_code == 403
        assert existing.json()["detail"] == fresh.json()["detail"]
        for_bob = ada.post(
            "/v1/workspaces/alpha/invitations", json={"email": "Bob@Example.com", "role": "member"}
        )
        for_new = ada.post("/v1/workspaces/alpha/invitations", json={"email": "newbie@example.com"})
        assert for_bob.status_code == for_new.status_code == 201
        assert set(for_bob.json()) == set(for_new.json())
        assert for_bob.json()["status"] == for_new.json()["status"] == "pending"
        emails = {u["email"] for u in ada.get("/v1/users").json()["users"]}
        assert "bob@example.com" not in emails
        pending = ada.get("/v1/workspaces/alpha/invitations").json()["invitations"]
        assert {i["email"] for i in pending} == {"bob@example.com", "newbie@example.com"}
        assert all(i["token"] is None for i in pending)

    with world.as_("bob@example.com") as as_bob:
        mine = as_bob.get("/v1/invitations").json()["invitations"]
        assert [(i["workspace_name"], i["role"]) for i in mine] == [("Alpha", "member")]
        not_his = as_bob.post(f"/v1/invitations/{for_new.json()['id']}/accept")
        assert not_his.status_code == 404
        assert as_bob.post(f"/v1/invitations/{mine[0]['id']}/accept").is_success
        assert as_bob.get("/v1/knowledge-bases", headers={"X-Workspace": "alpha"}).is_success
        again = as_bob.post(f"/v1/invitations/{mine[0]['id']}/accept")
        assert again.status_code == 404

    # The link lets someone without an account make one, once.
    link = {"token": for_new.json()["token"], "password": "a fresh password", "name": "Newbie"}
    joined = httpx.post(f"{world.url}/v1/auth/invitations/accept", json=link)
    assert joined.status_code == 200, joined.text
    assert (joined.json()["workspace_id"], joined.json()["role"]) == ("alpha", "member")
    replay = httpx.post(f"{world.url}/v1/auth/invitations/accept", json=link)
    assert replay.status_code == 404

    # For an address that has an account, the link wants that account's password.
    with world.as_("root@example.com") as root:
        to_beta = root.post(
            "/v1/workspaces/beta/invitations", json={"email": "alice@example.com"}
        ).json()
        declined = root.post(
            "/v1/workspaces/beta/invitations", json={"email": "vera@example.com"}
        ).json()
    wrong = httpx.post(
        f"{world.url}/v1/auth/invitations/accept",
        json={"token": to_beta["token"], "password": "not her password"},
    )
    assert wrong.status_code == 401
    right = httpx.post(
        f"{world.url}/v1/auth/invitations/accept",
        json={"token": to_beta["token"], "password": PASSWORD},
    )
    assert right.status_code == 200 and right.json()["workspace_id"] == "beta"
    with world.as_("vera@example.com") as vera:
        assert vera.post(f"/v1/invitations/{declined['id']}/decline").json()["status"] == (
            "declined"
        )
    with world.as_("root@example.com") as root:
        actions = [e["action"] for e in root.get("/v1/audit").json()["events"]]
    assert {"invitation.create", "invitation.accept", "invitation.decline"} <= set(actions)


def test_records_show_members_by_name_and_nobody_else_by_id(world: World) -> None:
    alice = user_id(world, "alice@example.com")
    with world.as_("alice@example.com") as as_alice:
        uploaded = as_alice.post(
            f"/v1/knowledge-bases/{world.kb}/documents", files={"files": ("a.md", b"# A\n\nB.")}
        )
        assert uploaded.status_code == 202
        job = uploaded.json()["job_ids"][0]
        removed = as_alice.delete(f"/v1/knowledge-bases/{world.kb}/documents/{world.document}")
        assert removed.status_code == 204
    with world.as_("ada@example.com") as ada:
        assert ada.get(f"/v1/jobs/{job}").json()["owner"] == "alice@example.com"
        deletion = ada.get("/v1/audit", params={"action": "document.delete"}).json()["events"]
        assert deletion[0]["actor"] == "alice@example.com"
    with world.as_("root@example.com") as root:
        assert root.delete(f"/v1/workspaces/alpha/members/{alice}").status_code == 204
    with world.as_("ada@example.com") as ada:
        assert ada.get(f"/v1/jobs/{job}").json()["owner"] == OUTSIDER
        events = ada.get("/v1/audit").json()["events"]
        assert next(e for e in events if e["action"] == "document.delete")["actor"] == OUTSIDER
        shown = {e["actor"] for e in events} | {e["target"] or "" for e in events}
        assert not any(alice in value for value in shown)
    with world.as_("root@example.com") as root:  # instance administrators see everyone
        events = root.get("/v1/audit", params={"action": "document.delete"}).json()["events"]
        assert events[0]["actor"] == "alice@example.com"


def test_headers_and_parsed_bodies_have_limits(world: World) -> None:
    huge = httpx.get(f"{world.url}/health", headers={"X-Padding": "a" * 64 * 1024})
    assert huge.status_code == 431
    assert huge.headers["content-type"] == "application/problem+json"
    assert "CITELINE_MAX_HEADER_BYTES" in huge.json()["detail"]
    token = world.token("ada@example.com")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = b'{"name": "' + b"x" * (3 * 2**20) + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    with httpx.Client(base_url=world.url, headers=headers) as client:
        declared = client.post("/v1/knowledge-bases", content=body)
        assert declared.status_code == 413
        assert "CITELINE_MAX_JSON_BYTES" in declared.json()["detail"]
    with httpx.Client(base_url=world.url, headers=headers) as client:
        streamed = client.post("/v1/knowledge-bases", content=chunks())
        assert streamed.status_code == 413
    with world.as_("ada@example.com") as ada:
        names = [kb["name"] for kb in ada.get("/v1/knowledge-bases").json()["knowledge_bases"]]
        assert names == ["handbook"]  # nothing was stored
        # Uploads keep their own, larger limit.
        big = ada.post(
            f"/v1/knowledge-bases/{world.kb}/documents",
            files={"files": ("big.txt", b"word " * (3 * 2**20 // 5))},
        )
        assert big.status_code == 202, big.text


def test_throttling_slows_the_attacker_and_not_the_accounts_owner(world: World) -> None:
    allowed = world.resources.settings.sign_in_failures_allowed
    for _ in range(allowed):
        wrong = sign_in(world, "alice@example.com", "guess", ATTACKER)
        assert wrong.status_code == 401
    held = sign_in(world, "alice@example.com", PASSWORD, ATTACKER)
    assert held.status_code == 429
    first_wait = int(held.headers["retry-after"])
    assert first_wait >= 1
    # The owner, elsewhere, is not slowed by the attack.
    assert sign_in(world, "alice@example.com", PASSWORD, OWNER_HOME).status_code == 200
    # The attacker waits twice as long after each further failure.
    time.sleep(first_wait + 0.1)
    assert sign_in(world, "alice@example.com", "guess", ATTACKER).status_code == 401
    longer = sign_in(world, "alice@example.com", PASSWORD, ATTACKER)
    assert longer.status_code == 429 and int(longer.headers["retry-after"]) >= 2 * first_wait

    # An address trying many accounts slows accounts new to it, not those who use it.
    shared = {"X-Forwarded-For": "192.0.2.50"}
    assert sign_in(world, "ada@example.com", PASSWORD, shared).status_code == 200
    for n in range(allowed * 4):
        assert sign_in(world, f"u{n}@example.com", "x", shared).status_code == 401
    stranger = sign_in(world, "vera@example.com", PASSWORD, shared)
    assert stranger.status_code == 429 and int(stranger.headers["retry-after"]) <= 30
    assert sign_in(world, "ada@example.com", PASSWORD, shared).status_code == 200

    with world.as_("root@example.com") as root:
        events = root.get("/v1/audit", params={"action": "auth.sign_in"}).json()["events"]
    throttled = [e for e in events if e["detail"].get("why") == "throttled"]
    assert throttled and all(e["outcome"] == "denied" for e in throttled)
    assert {e["client"] for e in throttled} >= {"203.0.113.9"}


def test_revocation_ends_access_tokens_at_once(world: World) -> None:
    def me(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{world.url}/v1/auth/me", headers=headers).status_code

    def refresh(token: str) -> httpx.Response:
        return httpx.post(
            f"{world.url}/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
        )

    signed_out = sign_in(world, "alice@example.com").json()
    assert me(signed_out["access_token"]) == 200
    out = httpx.post(
        f"{world.url}/v1/auth/logout", json={"refresh_token": signed_out["refresh_token"]}
    )
    assert out.status_code == 204
    assert me(signed_out["access_token"]) == 401

    stolen = sign_in(world, "alice@example.com").json()
    rotated = refresh(stolen["refresh_token"]).json()
    assert me(rotated["access_token"]) == 200
    assert refresh(stolen["refresh_token"]).status_code == 401  # reuse: one of two is a thief
    assert me(rotated["access_token"]) == 401

    before = sign_in(world, "alice@example.com").json()
    alice = user_id(world, "alice@example.com")
    with world.as_("root@example.com") as root:
        assert root.patch(f"/v1/users/{alice}", json={"disabled": True}).is_success
        assert me(before["access_token"]) == 401
        assert root.patch(f"/v1/users/{alice}", json={"disabled": False}).is_success
    assert me(before["access_token"]) == 401  # enabled again, but that sign-in stays ended
    assert me(sign_in(world, "alice@example.com").json()["access_token"]) == 200

    other = sign_in(world, "alice@example.com").json()
    changer = sign_in(world, "alice@example.com").json()
    changed = httpx.patch(
        f"{world.url}/v1/users/{alice}",
        json={"password": "an entirely new one", "current_password": PASSWORD},
        headers={"Authorization": f"Bearer {changer['access_token']}"},
    )
    assert changed.status_code == 200
    assert me(other["access_token"]) == 401
    assert me(changer["access_token"]) == 200


def test_every_workspace_keeps_an_owner(world: World) -> None:
    ada = user_id(world, "ada@example.com")
    with world.as_("root@example.com") as root:
        made = root.post("/v1/workspaces", json={"name": "Delta", "owner_id": ada})
        assert made.status_code == 201, made.text
        assert [m["email"] for m in root.get("/v1/workspaces/delta/members").json()["members"]] == [
            "ada@example.com"
        ]
        for refused in (
            root.delete(f"/v1/users/{ada}"),
            root.patch(f"/v1/users/{ada}", json={"disabled": True}),
            root.delete(f"/v1/workspaces/delta/members/{ada}"),
            root.put(f"/v1/workspaces/delta/members/{ada}", json={"role": "admin"}),
        ):
            assert refused.status_code == 409, refused.text
            assert "owner" in refused.json()["detail"]
        nobody = root.post("/v1/workspaces", json={"name": "Echo", "owner_id": str(uuid.uuid4())})
        assert nobody.status_code == 422
        assert root.get("/v1/workspaces/delta/members").json()["members"][0]["role"] == "owner"
    with pytest.raises(InvalidInput, match="needs an owner"):
        world.resources.accounts().create_workspace("Foxtrot")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:6379/",
        "http://localhost:8080/v1",
        "http://[::1]:9000/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.10/v1",
        "ftp://example.com/",
    ],
)
def test_model_endpoints_inside_the_network_are_refused(world: World, url: str) -> None:
    with world.as_("root@example.com") as root:
        refused = root.post(
            "/v1/models",
            json={"name": "probe", "provider": "openai", "model": "m", "base_url": url},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "base_url"
        assert "CITELINE_OUTBOUND_ALLOWED_HOSTS" in refused.json()["detail"] or url.startswith(
            "ftp:"
        )
        assert all(m["id"] != "probe" for m in root.get("/v1/models").json()["data"])
