"""Encryption of the secrets an MCP server is given (its environment, its HTTP headers).

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived with HKDF from the instance secret:
`CITELINE_SECRET_KEY`, else a secret the deployment generates once and keeps in the database.
"""

from __future__ import annotations

import base64
import json
import secrets as random

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import DateTime, String, Text, column, select, table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import ConfigurationError
from citeline.settings import Settings

SECRET_NAME = "secrets-encryption-key"
# auth's `server_secrets` table, named here without importing auth's models.
_SECRETS = table(
    "server_secrets",
    column("name", String),
    column("value", Text),
    column("created_at", DateTime(timezone=True)),
)


class SecretBox:
    """Seals and opens JSON objects of secrets."""

    def __init__(self, instance_secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"citeline mcp server secrets"
        ).derive(instance_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @classmethod
    def for_settings(cls, sessions: sessionmaker[Session], settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value())
        return cls(_stored_secret(sessions))

    def seal(self, values: dict[str, dict[str, str]]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(
        self, token: str, remedy: str = "register the server again"
    ) -> dict[str, dict[str, str]]:
        try:
            values: dict[str, dict[str, str]] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigurationError(
                "an MCP server's stored secrets do not decrypt: CITELINE_SECRET_KEY changed "
                f"since they were saved; restore it or {remedy}"
            ) from None
        return values


def _stored_secret(sessions: sessionmaker[Session]) -> str:
    with unit_of_work(sessions) as session:
        session.execute(
            insert(_SECRETS)
            .values(name=SECRET_NAME, value=random.token_urlsafe(48), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value: str = session.scalars(
            select(_SECRETS.c.value).where(_SECRETS.c.name == SECRET_NAME)
        ).one()
        return value
