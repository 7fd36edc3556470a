"""Access tokens (short-lived JWTs signed with HS256) and the opaque secrets behind refresh
tokens and API keys, of which only a SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
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


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    workspace_id: str
    token_id: str


def signing_key(sessions: sessionmaker[Session], settings: Settings) -> str:
    """The configured key, else the one this deployment generated for itself on first use."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    with unit_of_work(sessions) as session:
        session.execute(
            insert(ServerSecret)
            .values(name=SECRET_NAME, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return session.scalars(
            select(ServerSecret.value).where(ServerSecret.name == SECRET_NAME)
        ).one()


def issue_access(
    key: str, user_id: uuid.UUID, workspace_id: str, lifetime_seconds: float
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
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
        "typ": "access",
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM), lifetime


def read_access(key: str, token: str) -> AccessClaims:
    """The claims of a valid token; anything else is refused with the reason."""
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
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthorized("the access token names no user") from None
    return AccessClaims(user_id, claims["ws"], str(claims.get("jti", "")))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(stored_digest: str, secret: str) -> bool:
    return secrets.compare_digest(stored_digest, digest(secret))
