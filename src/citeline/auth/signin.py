"""Signing in and staying signed in: passwords, rotating refresh tokens, one-time login codes
(after OIDC), and turning a presented credential into an `Access`."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import audit
from citeline.auth.access import Access, Role
from citeline.auth.api_keys import access_for_key, looks_like_key
from citeline.auth.models import Membership, RefreshToken, User, Workspace
from citeline.auth.passwords import hash_password, needs_rehash, verify
from citeline.auth.revocations import Revocations
from citeline.auth.throttle import SignInThrottle, ThrottlePolicy
from citeline.auth.tokens import (
    digest,
    issue_access,
    new_secret,
    read_access,
    same,
    signing_keys,
)
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import RateLimited, Unauthorized
from citeline.settings import Settings

LOGIN_CODE_KEY = "citeline:auth:login-code:"
LOGIN_CODE_SECONDS = 60
KEYS_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    workspace_id: str
    role: Role


@dataclass(frozen=True)
class OidcIdentity:
    issuer: str
    subject: str
    email: str | None
    name: str | None


class SignIn:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.settings = settings
        self.throttle = SignInThrottle(
            connection,
            ThrottlePolicy(
                free=settings.sign_in_failures_allowed,
                max_delay=settings.sign_in_max_delay_seconds,
            ),
        )
        self.revocations = Revocations(connection, settings.access_token_minutes * 60)
        self._keys: list[str] = []
        self._keys_read = 0.0

    @property
    def keys(self) -> list[str]:
        """Signing key first; re-read now and then so every process sees a rotation."""
        if not self._keys or time.monotonic() - self._keys_read > KEYS_TTL_SECONDS:
            self._keys = signing_keys(self.sessions, self.settings)
            self._keys_read = time.monotonic()
        return self._keys

    def password(
        self, email: str, password: str, client: str, workspace_id: str | None = None
    ) -> TokenPair:
        email = email.strip().lower()
        try:
            self.throttle.check(email, client)
        except RateLimited as exc:
            audit.record(
                self.sessions,
                audit.Entry(
                    "auth.sign_in",
                    email,
                    outcome="denied",
                    client=client,
                    detail={"why": "throttled", "retry_after": exc.retry_after},
                ),
            )
            raise
        with unit_of_work(self.sessions) as session:
            user = session.scalars(select(User).where(User.email == email)).first()
            stored = user.password_hash if user is not None else None
            if user is None or not verify(stored, password) or user.disabled:
                reason = "disabled" if user is not None and user.disabled else "bad credentials"
                failed = audit.Entry(
                    "auth.sign_in", email, outcome="failed", client=client, detail={"why": reason}
                )
                audit.add(session, failed)
                user = None
            elif stored is not None and needs_rehash(stored):
                user.password_hash = hash_password(password)
        if user is None:
            self.throttle.failed(email, client)
            raise Unauthorized("wrong email or password")
        self.throttle.succeeded(email, client)
        return self.issue(user.id, workspace_id, client=client, method="password")

    def issue(
        self,
        user_id: uuid.UUID,
        workspace_id: str | None = None,
        *,
        client: str | None = None,
        method: str = "password",
        family: uuid.UUID | None = None,
    ) -> TokenPair:
        """New tokens for a user in one of their workspaces (by default their first)."""
        with unit_of_work(self.sessions) as session:
            membership = _membership(session, user_id, workspace_id)
            secret = new_secret()
            row = RefreshToken(
                id=uuid.uuid4(),
                family=family or uuid.uuid4(),
                user_id=user_id,
                workspace_id=membership.workspace_id,
                token_hash=digest(secret),
                expires_at=utcnow() + timedelta(days=self.settings.refresh_token_days),
            )
            session.add(row)
            if family is None:
                audit.add(
                    session,
                    audit.Entry(
                        "auth.sign_in",
                        f"user:{user_id}",
                        membership.workspace_id,
                        client=client,
                        detail={"method": method},
                    ),
                )
            refresh = f"{row.id.hex}.{secret}"
            workspace, role = membership.workspace_id, Role(membership.role)
            session_id = row.family.hex
        access, lifetime = issue_access(
            self.keys[0], user_id, workspace, self.settings.access_token_minutes * 60, session_id
        )
        return TokenPair(access, refresh, lifetime, workspace, role)

    def refresh(self, token: str, client: str | None = None) -> TokenPair:
        """Swap a refresh token for new tokens; a token used twice revokes its whole family,
        since one of the two users is a thief."""
        with unit_of_work(self.sessions) as session:
            row = _refresh_row(session, token)
            now = utcnow()
            if row.revoked_at is not None:
                raise Unauthorized("the refresh token has been revoked; sign in again")
            if row.used_at is not None:
                session.execute(
                    update(RefreshToken)
                    .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                self.revocations.revoke([row.family.hex])
                audit.add(
                    session,
                    audit.Entry(
                        "auth.refresh_reuse",
                        f"user:{row.user_id}",
                        row.workspace_id,
                        outcome="denied",
                        client=client,
                        detail={"family": str(row.family)},
                    ),
                )
                reused = True
            else:
                reused = False
                if row.expires_at <= now:
                    raise Unauthorized("the refresh token has expired; sign in again")
                user = session.get(User, row.user_id)
                if user is None or user.disabled:
                    raise Unauthorized("the account no longer exists or is disabled")
                row.used_at = now
            user_id, workspace_id, family = row.user_id, row.workspace_id, row.family
        if reused:
            raise Unauthorized(
                "the refresh token was already used; every session of it is now revoked"
            )
        return self.issue(user_id, workspace_id, client=client, family=family)

    def logout(self, token: str) -> None:
        with unit_of_work(self.sessions) as session:
            row = _refresh_row(session, token)
            session.execute(
                update(RefreshToken)
                .where(RefreshToken.family == row.family, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            self.revocations.revoke([row.family.hex])
            audit.add(
                session, audit.Entry("auth.sign_out", f"user:{row.user_id}", row.workspace_id)
            )

    # one-time login codes, handed to the browser after an OIDC sign-in

    def login_code(self, user_id: uuid.UUID) -> str:
        code = secrets.token_urlsafe(32)
        payload = json.dumps({"user_id": str(user_id)})
        self.redis.set(LOGIN_CODE_KEY + digest(code), payload, ex=LOGIN_CODE_SECONDS)
        return code

    def redeem(self, code: str, client: str | None = None) -> TokenPair:
        raw = self.redis.getdel(LOGIN_CODE_KEY + digest(code))
        if raw is None:
            raise Unauthorized("the login code is unknown, used or expired; sign in again")
        user_id = uuid.UUID(json.loads(raw)["user_id"])
        return self.issue(user_id, client=client, method="oidc")

    def oidc_user(self, identity: OidcIdentity) -> uuid.UUID:
        """The user an OIDC identity signs in as; first-time users are made members of the
        configured workspace with the configured role. An existing password account is
        never taken over by an OIDC identity with the same email."""
        with unit_of_work(self.sessions) as session:
            user = session.scalars(
                select(User).where(
                    User.oidc_issuer == identity.issuer, User.oidc_subject == identity.subject
                )
            ).first()
            if user is not None:
                if user.disabled:
                    raise Unauthorized("this account is disabled")
                return user.id
            email = (identity.email or f"{identity.subject}@{_host(identity.issuer)}").lower()
            user = User(
                id=uuid.uuid4(),
                email=email,
                name=(identity.name or "")[:200],
                oidc_issuer=identity.issuer,
                oidc_subject=identity.subject,
            )
            session.add(user)
            try:
                session.flush()
            except IntegrityError:
                raise Unauthorized(
                    f"an account with the email {email} already exists; an administrator "
                    "must link it before it can sign in with single sign-on"
                ) from None
            role = Role(self.settings.oidc_default_role)
            session.add(
                Membership(user_id=user.id, workspace_id=self.settings.oidc_workspace, role=role)
            )
            audit.add(
                session,
                audit.Entry(
                    "user.create",
                    f"oidc:{identity.issuer}",
                    self.settings.oidc_workspace,
                    f"user:{user.id}",
                    detail={"email": email, "role": role},
                ),
            )
            return user.id

    # presented credentials

    def access(self, credential: str, workspace_id: str | None = None) -> Access:
        """The access a bearer credential (access token or API key) grants; `workspace_id`
        switches a user to another workspace they are a member of."""
        if looks_like_key(credential):
            access = access_for_key(self.sessions, credential)
            if workspace_id not in (None, access.workspace_id):
                raise Unauthorized("an API key works only in its own workspace")
            return access
        claims = read_access(self.keys, credential)
        if self.revocations.revoked(claims.session_id):
            raise Unauthorized(
                "this sign-in has ended (signed out, a new password, or a disabled account); "
                "sign in again"
            )
        access = self.user_access(claims.user_id, workspace_id or claims.workspace_id)
        return dataclasses.replace(access, session_id=claims.session_id)

    def user_access(self, user_id: uuid.UUID, workspace_id: str | None) -> Access:
        with self.sessions() as session:
            user = session.get(User, user_id)
            if user is None or user.disabled:
                raise Unauthorized("the account no longer exists or is disabled")
            try:
                membership = _membership(session, user_id, workspace_id)
                workspace_id, role = membership.workspace_id, Role(membership.role)
            except Unauthorized:
                # Instance admins may act in any workspace that exists.
                if not user.is_admin or session.get(Workspace, workspace_id) is None:
                    raise
                role = Role.owner
            assert workspace_id is not None
            return Access(
                f"user:{user_id}", workspace_id, role, user_id=user_id, instance_admin=user.is_admin
            )


def _membership(session: Session, user_id: uuid.UUID, workspace_id: str | None) -> Membership:
    statement = select(Membership).where(Membership.user_id == user_id)
    if workspace_id is not None:
        statement = statement.where(Membership.workspace_id == workspace_id)
    membership = session.scalars(
        statement.order_by((Membership.workspace_id != "default"), Membership.created_at)
    ).first()
    if membership is None:
        if workspace_id is None:
            raise Unauthorized("this account is not a member of any workspace")
        raise Unauthorized(f"you are not a member of workspace {workspace_id}")
    return membership


def _refresh_row(session: Session, token: str) -> RefreshToken:
    token_id, _, secret = token.partition(".")
    try:
        row = session.get(RefreshToken, uuid.UUID(hex=token_id), with_for_update=True)
    except ValueError:
        row = None
    if row is None or not same(row.token_hash, secret):
        raise Unauthorized("the refresh token is not valid")
    return row


def _host(issuer: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(issuer).hostname or "oidc"
