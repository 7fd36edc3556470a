"""API keys for services: made and revoked by workspace admins, shown once, kept hashed,
each scoped to one workspace, one role and a set of scopes.

A key never has more authority than the person who made it has now: it acts with the lower
of its own role and its maker's current role in its workspace, and not at all once its maker
is disabled, no longer a member, or deleted. A key may make other keys or manage members only
when its scopes say so, and revoking a key revokes every key made from it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from citeline.auth import audit
from citeline.auth.access import Access, Role, Scope
from citeline.auth.models import ApiKey, Membership, User
from citeline.auth.tokens import digest, new_secret, same
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import InvalidInput, NotFound, Unauthorized

PREFIX = "cl_"
LAST_USED_EVERY = timedelta(minutes=1)


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise InvalidInput(
                f"unknown scope {value!r}; scopes are {known}", field="scopes"
            ) from None
    return frozenset(scopes)


class ApiKeys:
    def __init__(self, sessions: sessionmaker[Session], access: Access) -> None:
        self.sessions = sessions
        self.access = access

    def create(
        self,
        name: str,
        role: Role,
        *,
        expires_in_days: float | None = None,
        scopes: Iterable[str] = (),
    ) -> tuple[ApiKey, str]:
        """A key for the caller's workspace, at most the caller's own role and scopes; and
        its secret, which is never shown again."""
        access = self.access
        access.require(Role.admin, "create API keys")
        access.require_scope(Scope.api_keys, "create API keys")
        wanted = parse_scopes(scopes)
        if role > access.role:
            raise InvalidInput(
                f"a key cannot have more power ({role}) than its maker ({access.role})",
                field="role",
            )
        if access.scopes is not None and not wanted <= access.scopes:
            extra = ", ".join(sorted(scope.value for scope in wanted - access.scopes))
            raise InvalidInput(
                f"a key cannot have scopes its maker lacks ({extra})", field="scopes"
            )
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("the name must be 1 to 200 characters", field="name")
        key_id = uuid.uuid4()
        secret = f"{PREFIX}{key_id.hex}_{new_secret()}"
        with unit_of_work(self.sessions) as session:
            creator_id = access.user_id
            if access.api_key_id is not None:
                # Lock the parent so it cannot be revoked between this check and the insert.
                parent = session.get(ApiKey, access.api_key_id, with_for_update=True)
                if parent is None or parent.revoked_at is not None:
                    raise Unauthorized("the API key has been revoked")
                creator_id = parent.creator_id
            row = ApiKey(
                id=key_id,
                name=name,
                workspace_id=access.owned_workspace(),
                role=role,
                key_hash=digest(secret),
                created_by=access.subject,
                creator_id=creator_id,
                parent_id=access.api_key_id,
                scopes=sorted(scope.value for scope in wanted),
                expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
            )
            session.add(row)
            audit.add(
                session,
                audit.by(
                    access, "api_key.create", f"key:{key_id}", name=name, role=role,
                    scopes=row.scopes,
                ),
            )  # fmt: skip
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
        """Revoke a key and every key made from it, at any depth."""
        self.access.require(Role.admin, "revoke API keys")
        self.access.require_scope(Scope.api_keys, "revoke API keys")
        with unit_of_work(self.sessions) as session:
            row = session.get(ApiKey, key_id)
            if row is None or not self.access.sees(row.workspace_id):
                raise NotFound(f"API key {key_id} not found")
            descendants = select(ApiKey.id).where(ApiKey.id == key_id).cte(recursive=True)
            descendants = descendants.union(
                select(ApiKey.id).where(ApiKey.parent_id == descendants.c.id)
            )
            now = utcnow()
            revoked = session.scalars(
                update(ApiKey)
                .where(ApiKey.id.in_(select(descendants.c.id)), ApiKey.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(ApiKey.id)
            ).all()
            if revoked:
                audit.add(
                    session,
                    audit.Entry(
                        "api_key.revoke",
                        self.access.subject,
                        row.workspace_id,
                        f"key:{key_id}",
                        detail={"revoked": [str(k) for k in revoked]},
                    ),
                )
            session.flush()
            session.refresh(row)
            session.expunge(row)
            return row


def looks_like_key(credential: str) -> bool:
    return credential.startswith(PREFIX)


def access_for_key(sessions: sessionmaker[Session], secret: str) -> Access:
    """The access a presented key grants now, or Unauthorized saying why it grants none.

    One query reads the key with its maker and the maker's membership in the key's
    workspace; the key's role is capped by the maker's current role."""
    try:
        key_id = uuid.UUID(hex=secret[len(PREFIX) :].split("_", 1)[0])
    except ValueError:
        raise Unauthorized("the API key is malformed") from None
    with sessions() as session:
        row = session.execute(_KEY_WITH_MAKER, {"key_id": key_id}).first()
    if row is None or not same(row.key_hash, secret):
        raise Unauthorized("the API key is not valid")
    if row.revoked_at is not None:
        raise Unauthorized("the API key has been revoked")
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("the API key has expired")
    role = Role(row.role)
    if row.creator_id is not None:
        maker = _maker_role(row.maker_disabled, row.maker_admin, row.maker_role, row.workspace_id)
        role = min(role, maker)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        with unit_of_work(sessions) as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    return Access(
        f"key:{key_id}",
        row.workspace_id,
        role,
        api_key_id=key_id,
        scopes=frozenset(Scope(scope) for scope in row.scopes),
    )


_maker = aliased(User)
_KEY_WITH_MAKER = (
    select(
        ApiKey.key_hash,
        ApiKey.workspace_id,
        ApiKey.role,
        ApiKey.scopes,
        ApiKey.creator_id,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        _maker.disabled.label("maker_disabled"),
        _maker.is_admin.label("maker_admin"),
        Membership.role.label("maker_role"),
    )
    .outerjoin(_maker, _maker.id == ApiKey.creator_id)
    .outerjoin(
        Membership,
        (Membership.user_id == ApiKey.creator_id)
        & (Membership.workspace_id == ApiKey.workspace_id),
    )
    .where(ApiKey.id == bindparam("key_id"))
)


def _maker_role(
    disabled: bool | None, is_admin: bool | None, membership_role: str | None, workspace_id: str
) -> Role:
    if disabled is None:
        raise Unauthorized("the API key's maker no longer exists")
    if disabled:
        raise Unauthorized("the API key's maker is disabled; its keys no longer work")
    if membership_role is not None:
        return Role(membership_role)
    if is_admin:
        return Role.owner  # instance administrators act in any workspace
    raise Unauthorized(
        f"the API key's maker is no longer a member of workspace {workspace_id}; "
        "its keys there no longer work"
    )
