"""Access tokens (short-lived JWTs signed with HS256) and the opaque secrets behind refresh
tokens and API keys, of which only a SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import jwt
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth.models import ServerSecret
from citeline.db.engine import unit_of_work
from citeline.errors import Unauthorized
from citeline.settings import Settings

ALGORITHM = "HS256"
ISSUER = "citeline"
SECRET_NAME = "jwt-signing-key"
PREVIOUS_NAME = "jwt-signing-key-previous"  # still verifies tokens signed before a rotation


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    workspace_id: str
    token_id: str
    session_id: str  # the sign-in (refresh-token family) the token was issued under


def signing_keys(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """The key that signs, then the ones that still verify: the configured keys, else the
    ones this deployment generated for itself (on first use, and at each rotation)."""
    if settings.jwt_secret is not None:
        configured = [settings.jwt_secret, *settings.jwt_previous_secrets]
        return [secret.get_secret_value() for secret in configured]
    with unit_of_work(sessions) as session:
        session.execute(
            insert(ServerSecret)
            .values(name=SECRET_NAME, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        rows = session.scalars(
            select(ServerSecret).where(ServerSecret.name.in_([SECRET_NAME, PREVIOUS_NAME]))
        )
        stored = {row.name: row.value for row in rows}
    return [stored[SECRET_NAME], *([stored[PREVIOUS_NAME]] if PREVIOUS_NAME in stored else [])]


def signing_key(sessions: sessionmaker[Session], settings: Settings) -> str:
    return signing_keys(sessions, settings)[0]


def rotate_signing_key(sessions: sessionmaker[Session]) -> None:
    """Sign with a new generated key; the current one keeps verifying until the next
    rotation, so tokens already issued live out their time. Rotate again later (after the
    access token lifetime) to retire the old key entirely."""
    with unit_of_work(sessions) as session:
        current = session.get(ServerSecret, SECRET_NAME, with_for_update=True)
        previous = session.get(ServerSecret, PREVIOUS_NAME, with_for_update=True)
        if current is None:
            session.add(ServerSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48)))
            return
        if previous is None:
            session.add(ServerSecret(name=PREVIOUS_NAME, value=current.value))
        else:
            previous.value = current.value
        current.value = secrets.token_urlsafe(48)


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue_access(
    key: str, user_id: uuid.UUID, workspace_id: str, lifetime_seconds: float, session_id: str
) -> tuple[str, int]:
    """A signed access token of the sign-in `session_id`, and its lifetime in seconds."""
    now = int(time.time())
    lifetime = int(lifetime_seconds)
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "ws": workspace_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "sid": session_id,
        "typ": "access",
    }
    token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key)})
    return token, lifetime


def read_access(keys: Sequence[str], token: str) -> AccessClaims:
    """The claims of a valid token, checked with the key its `kid` names (the signing key
    when it names none we hold); anything else is refused with the reason."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the access token is not valid: {exc}") from None
    key = next((k for k in keys if key_id(k) == kid), keys[0])
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],  # never the token's own say: no `none`, no key confusion
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired; refresh it or sign in again") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("the access token's signature is not valid") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized(f"access tokens must be signed with {ALGORITHM}") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the access token is not valid: {exc}") from None
    if claims.get("typ") != "access" or not isinstance(claims.get("ws"), str):
        raise Unauthorized("the bearer token is not a Citeline access token")
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise Unauthorized("the access token names no sign-in session; refresh it")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthorized("the access token names no user") from None
    return AccessClaims(user_id, claims["ws"], str(claims.get("jti", "")), claims["sid"])


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(stored_digest: str, secret: str) -> bool:
    return secrets.compare_digest(stored_digest, digest(secret))
