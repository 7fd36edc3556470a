"""OpenID Connect sign-in against a real provider (oidc-provider under Node) and a real Redis."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from citeline.auth.oidc import STATE_PREFIX, STATE_TTL_SECONDS, OidcClient
from citeline.errors import InvalidInput, ServiceUnavailable, Unauthorized
from tests.conftest import for_this_worker
from tests.oidc_provider import ACCOUNTS, OidcProvider, run_oidc_provider

REDIS_URL = for_this_worker("redis://127.0.0.1:6379/14")


@pytest.fixture
def connection(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The Redis at 127.0.0.1:6379 (db 14, less two per test worker), or the embedded Valkey
    where none listens."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        client.close()
        client = redis.Redis.from_url(request.getfixturevalue("embedded_redis_url"))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with run_oidc_provider() as running:
        yield running


@pytest.fixture
def client(provider: OidcProvider, connection: redis.Redis) -> OidcClient:
    return OidcClient(
        provider.issuer,
        provider.client_id,
        provider.client_secret,
        provider.redirect_uri,
        connection,
    )


def callback_params(callback_url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(callback_url).query)
    return query["code"][0], query["state"][0]


def sign_in(client: OidcClient, provider: OidcProvider, user: str = "alice") -> tuple[str, str]:
    return callback_params(provider.login(client.authorization_url("/"), user))


def test_sign_in_returns_the_identity(
    client: OidcClient,
    provider: OidcProvider,
    connection: redis.Redis,
) -> None:
    url = client.authorization_url("/knowledge/42?tab=sources")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["openid email profile"]
    key = STATE_PREFIX + query["state"][0]
    assert 0 < int(connection.ttl(key)) <= STATE_TTL_SECONDS

    code, state = callback_params(provider.login(url, "alice"))
    identity = client.complete(code, state)

    assert identity.issuer == provider.issuer
    assert identity.subject == "alice"
    assert identity.email == "alice@example.com"
    assert identity.email_verified is True
    assert identity.name == "Alice Liddell"
    assert identity.return_to == "/knowledge/42?tab=sources"
    assert connection.exists(key) == 0


def test_public_client_signs_in_with_pkce_alone(
    provider: OidcProvider,
    connection: redis.Redis,
) -> None:
    public = OidcClient(
        provider.issuer, provider.public_client_id, None, provider.redirect_uri, connection
    )
    identity = public.complete(*sign_in(public, provider, "bob"))
    assert (identity.subject, identity.email) == ("bob", ACCOUNTS["bob"]["email"])
    assert identity.email_verified is False


def test_state_is_used_once(client: OidcClient, provider: OidcProvider) -> None:
    code, state = sign_in(client, provider)
    client.complete(code, state)
    with pytest.raises(Unauthorized, match="already used"):
        client.complete(code, state)


def test_unknown_state_is_refused(client: OidcClient, provider: OidcProvider) -> None:
    code, _ = sign_in(client, provider)
    with pytest.raises(Unauthorized, match="unknown"):
        client.complete(code, "made-up-state")


def test_tampered_code_is_refused(client: OidcClient, provider: OidcProvider) -> None:
    code, state = sign_in(client, provider)
    with pytest.raises(Unauthorized, match="invalid_grant"):
        client.complete(code[:-2] + "xx", state)


def test_wrong_pkce_verifier_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    connection: redis.Redis,
) -> None:
    code, state = sign_in(client, provider)
    raw = connection.get(STATE_PREFIX + state)
    assert isinstance(raw, bytes)
    record = json.loads(raw)
    record["verifier"] = "x" * 43
    connection.set(STATE_PREFIX + state, json.dumps(record))
    with pytest.raises(Unauthorized, match="invalid_grant"):
        client.complete(code, state)


@pytest.mark.parametrize(
    ("claims", "alg", "key", "error"),
    [
        ({"nonce": "another-nonce"}, "RS256", "provider", "nonce does not match"),
        ({"nonce": None}, "RS256", "provider", 'missing the "nonce" claim'),
        ({"aud": "another-client"}, "RS256", "provider", "Audience doesn't match"),
        ({"aud": ["citeline", "other"], "azp": "other"}, "RS256", "provider", "azp"),
        ({"iss": "http://evil.example"}, "RS256", "provider", "Invalid issuer"),
        ({"exp": 1_000_000_000}, "RS256", "provider", "expired"),
        ({}, "RS256", "stranger", "Signature verification failed"),
        ({}, "none", "provider", "signed with 'none'"),
        ({}, "HS256", "provider", "signed with 'HS256'"),
    ],
    ids=["nonce", "no-nonce", "aud", "azp", "iss", "exp", "signature", "alg-none", "alg-hs256"],
)
def test_bad_id_token_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    claims: dict[str, object],
    alg: str,
    key: str,
    error: str,
) -> None:
    code, state = sign_in(client, provider)
    provider.tamper_next_id_token(claims, alg=alg, key=key)
    with pytest.raises(Unauthorized, match=error):
        client.complete(code, state)


def test_untampered_id_token_passes_the_tamper_hook(
    client: OidcClient,
    provider: OidcProvider,
) -> None:
    """The re-signing hook alone (no change) must not break verification."""
    code, state = sign_in(client, provider)
    provider.tamper_next_id_token({})
    assert client.complete(code, state).subject == "alice"


@pytest.mark.parametrize(
    "return_to",
    ["//evil.example", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "home", ""],
)
def test_return_to_must_be_a_local_path(client: OidcClient, return_to: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        client.authorization_url(return_to)
    assert caught.value.field == "return_to"


def test_unreachable_provider_is_unavailable(connection: redis.Redis) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer = f"http://127.0.0.1:{port}"
    client = OidcClient(issuer, "citeline", "secret", f"{issuer}/cb", connection, timeout=2)
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        client.authorization_url("/")


def test_provider_down_at_the_callback_is_unavailable(connection: redis.Redis) -> None:
    with run_oidc_provider() as provider:
        client = OidcClient(
            provider.issuer,
            provider.client_id,
            provider.client_secret,
            provider.redirect_uri,
            connection,
            timeout=2,
        )
        code, state = sign_in(client, provider)
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        client.complete(code, state)
