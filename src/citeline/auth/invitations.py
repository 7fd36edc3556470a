"""Invitations: how someone joins a workspace with their consent.

A workspace admin invites an email address with a role; the answer is the same whether or not
the address has an account. The invitation becomes a membership only when its person accepts
it: signed in with that email (from their list of invitations), or with the invitation's
one-time link, which also lets someone without an account make one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import audit
from citeline.auth.access import Access, Role, Scope
from citeline.auth.accounts import clean_email
from citeline.auth.models import Invitation, Membership, User, Workspace
from citeline.auth.passwords import hash_password, verify
from citeline.auth.throttle import SignInThrottle
from citeline.auth.tokens import digest, new_secret
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Forbidden, NotFound, Unauthorized

LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Accepted:
    user_id: uuid.UUID
    workspace_id: str
    role: Role


class Invitations:
    def __init__(self, sessions: sessionmaker[Session], access: Access) -> None:
        self.sessions = sessions
        self.access = access

    # workspace admins

    def invite(self, workspace_id: str, email: str, role: Role) -> tuple[Invitation, str]:
        """A new invitation (replacing any pending one for the same address) and its token,
        shown only now."""
        self._require_manager(workspace_id, role)
        email = clean_email(email)
        token = new_secret()
        with unit_of_work(self.sessions) as session:
            if session.get(Workspace, workspace_id) is None:
                raise NotFound(f"workspace {workspace_id} not found")
            now = utcnow()
            session.execute(
                update(Invitation)
                .where(*_pending(now), Invitation.workspace_id == workspace_id)
                .where(Invitation.email == email)
                .values(revoked_at=now)
            )
            row = Invitation(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                email=email,
                role=role,
                token_hash=digest(token),
                invited_by=self.access.subject,
                created_at=now,
                expires_at=now + LIFETIME,
            )
            session.add(row)
            audit.add(
                session,
                audit.Entry(
                    "invitation.create",
                    self.access.subject,
                    workspace_id,
                    f"invitation:{row.id}",
                    detail={"email": email, "role": role},
                ),
            )
            session.flush()
            session.expunge(row)
        return row, token

    def pending(self, workspace_id: str) -> list[Invitation]:
        self._require_manager(workspace_id, Role.viewer)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Invitation)
                    .where(*_pending(utcnow()), Invitation.workspace_id == workspace_id)
                    .order_by(Invitation.created_at.desc())
                )
            )

    def revoke(self, workspace_id: str, invitation_id: uuid.UUID) -> None:
        self._require_manager(workspace_id, Role.viewer)
        with unit_of_work(self.sessions) as session:
            row = session.get(Invitation, invitation_id, with_for_update=True)
            if row is None or row.workspace_id != workspace_id or not row.pending:
                raise NotFound(f"no pending invitation {invitation_id} in {workspace_id}")
            row.revoked_at = utcnow()
            audit.add(
                session,
                audit.Entry(
                    "invitation.revoke", self.access.subject, workspace_id, f"invitation:{row.id}"
                ),
            )

    # the invited person

    def mine(self) -> list[Invitation]:
        """Pending invitations addressed to the signed-in person's email."""
        email = self._my_email()
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Invitation)
                    .where(*_pending(utcnow()), Invitation.email == email)
                    .order_by(Invitation.created_at)
                )
            )

    def respond(self, invitation_id: uuid.UUID, *, accept: bool) -> Invitation:
        email = self._my_email()
        assert self.access.user_id is not None
        with unit_of_work(self.sessions) as session:
            row = session.get(Invitation, invitation_id, with_for_update=True)
            if row is None or row.email != email or not _is_pending(row):
                raise NotFound(f"no pending invitation {invitation_id} for you")
            if accept:
                _join(session, row, self.access.user_id, f"user:{self.access.user_id}")
            else:
                row.declined_at = utcnow()
                audit.add(
                    session,
                    audit.Entry(
                        "invitation.decline",
                        f"user:{self.access.user_id}",
                        row.workspace_id,
                        f"invitation:{row.id}",
                    ),
                )
            session.flush()
            session.expunge(row)
            return row

    def _my_email(self) -> str:
        if self.access.user_id is None:
            raise Forbidden("only a signed-in person can answer invitations, not an API key")
        with self.sessions() as session:
            user = session.get(User, self.access.user_id)
            if user is None:
                raise NotFound("your account no longer exists")
            return user.email

    def _require_manager(self, workspace_id: str, role: Role) -> None:
        access = self.access
        if access.instance_admin:
            return
        access.check(workspace_id, f"workspace {workspace_id}")
        access.require(Role.admin, "invite people")
        access.require_scope(Scope.members, "invite people")
        if role == Role.owner:
            access.require(Role.owner, "invite owners")


def accept_with_token(
    sessions: sessionmaker[Session],
    throttle: SignInThrottle,
    token: str,
    password: str,
    *,
    name: str = "",
    client: str = "unknown",
) -> Accepted:
    """Accept an invitation by its link. Whoever holds the link proves who they are with the
    invited address's password, or, when the address has no account yet, makes one with it."""
    with unit_of_work(sessions) as session:
        row = session.scalars(
            select(Invitation).where(Invitation.token_hash == digest(token)).with_for_update()
        ).first()
        if row is None or not _is_pending(row):
            raise NotFound("the invitation is unknown, used, withdrawn or expired")
        user = session.scalars(select(User).where(User.email == row.email)).first()
        if user is None:
            user = User(
                id=uuid.uuid4(),
                email=row.email,
                name=name.strip()[:200],
                password_hash=hash_password(password),
            )
            session.add(user)
            session.flush()
            audit.add(
                session,
                audit.Entry(
                    "user.create",
                    f"invitation:{row.id}",
                    row.workspace_id,
                    f"user:{user.id}",
                    client=client,
                    detail={"email": row.email},
                ),
            )
        else:
            throttle.check(row.email, client)
            if user.disabled or not verify(user.password_hash, password):
                throttle.failed(row.email, client)
                raise Unauthorized(
                    f"to accept, give the password of {row.email}: it does not match that account"
                )
        _join(session, row, user.id, f"user:{user.id}", client=client)
        return Accepted(user.id, row.workspace_id, Role(row.role))


def _join(
    session: Session, row: Invitation, user_id: uuid.UUID, actor: str, client: str | None = None
) -> None:
    existing = session.get(Membership, (user_id, row.workspace_id))
    if existing is not None and Role(existing.role) >= Role(row.role):
        row.accepted_at = utcnow()  # already a member with as much power: nothing to add
    elif existing is not None:
        existing.role = row.role
        row.accepted_at = utcnow()
    else:
        session.execute(
            insert(Membership)
            .values(user_id=user_id, workspace_id=row.workspace_id, role=row.role)
            .on_conflict_do_nothing()
        )
        row.accepted_at = utcnow()
    audit.add(
        session,
        audit.Entry(
            "invitation.accept",
            actor,
            row.workspace_id,
            f"invitation:{row.id}",
            client=client,
            detail={"role": row.role},
        ),
    )


def _is_pending(row: Invitation) -> bool:
    return row.pending and row.expires_at > utcnow()


def _pending(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Invitation.accepted_at.is_(None),
        Invitation.declined_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    ]
