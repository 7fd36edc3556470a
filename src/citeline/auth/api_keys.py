"""API keys for services: made and revoked by workspace admins, shown once, kept hashed,
each scoped to one workspace and one role."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import audit
from citeline.auth.access import Access, Role
from citeline.auth.models import ApiKey
from citeline.auth.tokens import digest, new_secret, same
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import InvalidInput, NotFound, Unauthorized

PREFIX = "cl_"


class ApiKeys:
    def __init__(self, sessions: sessionmaker[Session], access: Access) -> None:
        self.sessions = sessions
        self.access = access

    def create(
        self, name: str, role: Role, *, expires_in_days: float | None = None
    ) -> tuple[ApiKey, str]:
        """A key for the caller's workspace, at most the caller's own role; and its secret,
        which is never shown again."""
        self.access.require(Role.admin, "create API keys")
        if role > self.access.role:
            raise InvalidInput(
                f"a key cannot have more power ({role}) than its maker ({self.access.role})",
                field="role",
            )
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("the name must be 1 to 200 characters", field="name")
        key_id = uuid.uuid4()
        secret = f"{PREFIX}{key_id.hex}_{new_secret()}"
        row = ApiKey(
            id=key_id,
            name=name,
            workspace_id=self.access.owned_workspace(),
            role=role,
            key_hash=digest(secret),
            created_by=self.access.subject,
            expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        with unit_of_work(self.sessions) as session:
            session.add(row)
            audit.add(
                session,
                audit.by(self.access, "api_key.create", f"key:{key_id}", name=name, role=role),
            )
            session.flush()
            session.expunge(row)
        return row, secret

    def list(self) -> list[ApiKey]:
        self.access.require(Role.admin, "list API keys")
        statement = select(ApiKey).order_by(ApiKey.created_at.desc())
        if not self.access.is_system:
            statement = statement.where(ApiKey.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            return list(session.scalars(statement))

    def revoke(self, key_id: uuid.UUID) -> ApiKey:
        self.access.require(Role.admin, "revoke API keys")
        with unit_of_work(self.sessions) as session:
            row = session.get(ApiKey, key_id)
            if row is None or not self.access.sees(row.workspace_id):
                raise NotFound(f"API key {key_id} not found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                audit.add(
                    session,
                    audit.Entry(
                        "api_key.revoke", self.access.subject, row.workspace_id, f"key:{key_id}"
                    ),
                )
            session.flush()
            session.expunge(row)
            return row


def looks_like_key(credential: str) -> bool:
    return credential.startswith(PREFIX)


def access_for_key(sessions: sessionmaker[Session], secret: str) -> Access:
    """The access a presented key grants, or Unauthorized saying why it grants none."""
    try:
        key_id = uuid.UUID(hex=secret[len(PREFIX) :].split("_", 1)[0])
    except ValueError:
        raise Unauthorized("the API key is malformed") from None
    with unit_of_work(sessions) as session:
        row = session.get(ApiKey, key_id)
        if row is None or not same(row.key_hash, secret):
            raise Unauthorized("the API key is not valid")
        if row.revoked_at is not None:
            raise Unauthorized("the API key has been revoked")
        now = utcnow()
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthorized("the API key has expired")
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now
        return Access(f"key:{row.id}", row.workspace_id, Role(row.role), api_key_id=row.id)
