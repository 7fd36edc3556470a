"""Users, workspaces and who is a member of which, with what role."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import audit
from citeline.auth.access import DEFAULT_WORKSPACE, Access, Role, Scope
from citeline.auth.models import ApiKey, Membership, RefreshToken, User, Workspace
from citeline.auth.passwords import hash_password, verify
from citeline.auth.revocations import Revocations, recent_sessions
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import ConfigurationError, Conflict, Forbidden, InvalidInput, NotFound

LOCAL_EMAIL = "local@localhost"
OUTSIDER = "someone outside this workspace"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Member:
    user: User
    role: Role


def clean_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return email


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown role {value!r}; use one of {roles}", field="role") from None


# Run in the deleting transaction before a workspace goes: a domain drops what it keeps of
# the workspace (or raises Conflict). Rows with a foreign key to the workspace need none.
WorkspaceHook = Callable[[Session, str], None]


class Accounts:
    """`revocations` ends sign-ins when a password changes or an account is disabled; an
    Accounts built without it may do neither. `on_workspace_delete` are the domains' hooks."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        access: Access,
        revocations: Revocations | None = None,
        *,
        on_workspace_delete: Sequence[WorkspaceHook] = (),
    ) -> None:
        self.sessions = sessions
        self.access = access
        self.revocations = revocations
        self.on_workspace_delete = tuple(on_workspace_delete)

    # users

    def create_user(
        self,
        email: str,
        password: str | None,
        *,
        name: str = "",
        is_admin: bool = False,
        workspace_id: str | None = None,
        role: Role = Role.member,
    ) -> User:
        """A new account, a member of `workspace_id` (default: the caller's) with `role`.
        Only instance administrators make accounts: anyone else could learn from the answer
        whether an email has one. Workspace admins invite people instead (`Invitations`)."""
        workspace_id = workspace_id or self.access.owned_workspace()
        self.access.require_instance_admin(
            "create accounts; workspace admins invite people with "
            f"POST /v1/workspaces/{workspace_id}/invitations"
        )
        user = User(
            id=uuid.uuid4(),
            email=clean_email(email),
            name=name.strip()[:200],
            password_hash=hash_password(password) if password is not None else None,
            is_admin=is_admin,
        )
        try:
            with unit_of_work(self.sessions) as session:
                self._workspace(session, workspace_id)
                session.add(user)
                session.flush()
                session.add(Membership(user_id=user.id, workspace_id=workspace_id, role=role))
                audit.add(
                    session,
                    audit.Entry(
                        "user.create",
                        self.access.subject,
                        workspace_id,
                        f"user:{user.id}",
                        detail={"email": user.email, "role": role, "is_admin": is_admin},
                    ),
                )
        except IntegrityError:
            raise Conflict(f"a user with the email {user.email} already exists") from None
        return user

    def users(self) -> list[Member]:
        """Members of the caller's workspace (an instance admin: of every workspace)."""
        self.access.require(Role.viewer, "list users")
        statement = select(User, Membership.role).join(Membership, Membership.user_id == User.id)
        if not self.access.instance_admin:
            statement = statement.where(Membership.workspace_id == self.access.workspace_id)
        with self.sessions() as session:
            seen: dict[uuid.UUID, Member] = {}
            for user, role in session.execute(statement.order_by(User.email)):
                if user.id not in seen:
                    seen[user.id] = Member(user, Role(role))
            return list(seen.values())

    def user(self, user_id: uuid.UUID) -> User:
        with self.sessions() as session:
            user = session.get(User, user_id)
            if user is None or not self._visible(session, user.id):
                raise NotFound(f"user {user_id} not found")
            return user

    def update_user(
        self,
        user_id: uuid.UUID,
        *,
        name: str | None = None,
        password: str | None = None,
        disabled: bool | None = None,
        is_admin: bool | None = None,
        current_password: str | None = None,
    ) -> User:
        """Change an account. Users may rename themselves and change their own password
        (giving the current one); the rest is for instance administrators. A new password or
        a disabled account ends every sign-in of it."""
        own = user_id == self.access.user_id
        if not own or disabled is not None or is_admin is not None:
            self.access.require_instance_admin("change another user's account")
        if own and (disabled or is_admin is False):
            raise Conflict("you cannot disable your own account or drop your own admin rights")
        with unit_of_work(self.sessions) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            if name is not None:
                user.name = name.strip()[:200]
            if password is not None:
                if (
                    own
                    and not self.access.instance_admin
                    and not verify(user.password_hash, current_password or "")
                ):
                    raise Forbidden("give your current password to change it")
                user.password_hash = hash_password(password)
            if disabled:
                self._check_not_last_owner(session, user_id, "disable")
            if password is not None or disabled:
                # Your own new password ends your other sign-ins, not the one you are using.
                keep = self.access.session_id if own and not disabled else None
                self._end_sessions(session, user_id, keep)
            if disabled is not None:
                user.disabled = disabled
            if is_admin is not None:
                user.is_admin = is_admin
            changed = {
                key: value
                for key, value in {
                    "name": name,
                    "password": "changed" if password else None,
                    "disabled": disabled,
                    "is_admin": is_admin,
                }.items()
                if value is not None
            }
            audit.add(session, audit.by(self.access, "user.update", f"user:{user_id}", **changed))
            session.flush()
            session.expunge(user)
            return user

    def delete_user(self, user_id: uuid.UUID) -> None:
        self.access.require_instance_admin("delete users")
        if user_id == self.access.user_id:
            raise Conflict("you cannot delete your own account")
        with unit_of_work(self.sessions) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            self._check_not_last_owner(session, user_id, "delete")
            self._end_sessions(session, user_id, None)
            audit.add(
                session,
                audit.by(self.access, "user.delete", f"user:{user_id}", email=user.email),
            )
            session.delete(user)

    def any_users(self) -> bool:
        with self.sessions() as session:
            return session.scalar(select(User.id).limit(1)) is not None

    def by_email(self, email: str) -> User | None:
        with self.sessions() as session:
            return session.scalars(select(User).where(User.email == email.strip().lower())).first()

    # workspaces

    def create_workspace(
        self, name: str, workspace_id: str | None = None, *, owner_id: uuid.UUID | None = None
    ) -> Workspace:
        """A new workspace whose owner is `owner_id`, else the calling user: a workspace
        always has an owner."""
        self.access.require_instance_admin("create workspaces")
        owner_id = owner_id or self.access.user_id
        if owner_id is None:
            raise InvalidInput(
                "a workspace needs an owner: name one (citeline workspaces create NAME "
                "--owner EMAIL)",
                field="owner",
            )
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("the name must be 1 to 200 characters", field="name")
        workspace_id = workspace_id or _slug(name)
        if not _WORKSPACE_ID.match(workspace_id):
            raise InvalidInput(
                "a workspace id is 1 to 63 lower-case letters, digits and dashes", field="id"
            )
        workspace = Workspace(id=workspace_id, name=name)
        try:
            with unit_of_work(self.sessions) as session:
                owner = session.get(User, owner_id)
                if owner is None or owner.disabled:
                    raise InvalidInput(
                        "the owner must be an account that exists and is enabled", field="owner"
                    )
                session.add(workspace)
                session.flush()
                session.add(
                    Membership(user_id=owner_id, workspace_id=workspace_id, role=Role.owner)
                )
                audit.add(
                    session,
                    audit.Entry(
                        "workspace.create",
                        self.access.subject,
                        workspace_id,
                        workspace_id,
                        detail={"owner": f"user:{owner_id}"},
                    ),
                )
        except IntegrityError:
            raise Conflict(f"a workspace with the id or name {name!r} already exists") from None
        return workspace

    def workspaces(self) -> list[tuple[Workspace, Role | None]]:
        """The caller's workspaces with their role (an instance admin sees every one)."""
        with self.sessions() as session:
            mine: dict[str, Role] = {}
            if self.access.user_id is not None:
                mine = {
                    m.workspace_id: Role(m.role)
                    for m in session.scalars(
                        select(Membership).where(Membership.user_id == self.access.user_id)
                    )
                }
            elif self.access.workspace_id is not None:
                mine = {self.access.workspace_id: self.access.role}
            statement = select(Workspace).order_by(Workspace.name)
            if not self.access.instance_admin:
                statement = statement.where(Workspace.id.in_(list(mine)))
            return [(ws, mine.get(ws.id)) for ws in session.scalars(statement)]

    def workspace_names(self, workspace_ids: set[str]) -> dict[str, str]:
        with self.sessions() as session:
            rows = session.execute(
                select(Workspace.id, Workspace.name).where(Workspace.id.in_(workspace_ids))
            )
            return {workspace_id: name for workspace_id, name in rows}

    def delete_workspace(self, workspace_id: str) -> None:
        """Remove a workspace with its memberships, keys, invitations, jobs and records; what
        its members made that matters (knowledge bases, reports) must be deleted first."""
        self.access.require_instance_admin("delete workspaces")
        if workspace_id == DEFAULT_WORKSPACE:
            raise Conflict("the default workspace cannot be deleted")
        with unit_of_work(self.sessions) as session:
            self._workspace(session, workspace_id)
            for hook in self.on_workspace_delete:
                hook(session, workspace_id)
            try:
                with session.begin_nested():
                    session.execute(delete(Workspace).where(Workspace.id == workspace_id))
            except IntegrityError as exc:
                held = _held_by(exc) or "data"
                raise Conflict(
                    f"workspace {workspace_id} still has {held}; delete them first"
                ) from None
            audit.add(session, audit.by(self.access, "workspace.delete", workspace_id))

    # memberships

    def members(self, workspace_id: str) -> list[Member]:
        if not self.access.instance_admin:
            self.access.check(workspace_id, f"workspace {workspace_id}")
        with self.sessions() as session:
            self._workspace(session, workspace_id)
            rows = session.execute(
                select(User, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.workspace_id == workspace_id)
                .order_by(User.email)
            )
            return [Member(user, Role(role)) for user, role in rows]

    def set_member(self, workspace_id: str, user_id: uuid.UUID, role: Role) -> None:
        """Add a user to a workspace, or change their role there."""
        self._require_manager(workspace_id, role, "change members")
        with unit_of_work(self.sessions) as session:
            self._workspace(session, workspace_id)
            membership = session.get(Membership, (user_id, workspace_id))
            before = membership.role if membership else None
            if membership is None:
                # Joining needs the person's consent: the same answer whether or not the id
                # is an account, so ids cannot be probed.
                if not self.access.instance_admin:
                    raise Forbidden(
                        "people join a workspace by accepting an invitation: invite them with "
                        f"POST /v1/workspaces/{workspace_id}/invitations"
                    )
                if session.get(User, user_id) is None:
                    raise NotFound(f"user {user_id} not found")
                session.add(Membership(user_id=user_id, workspace_id=workspace_id, role=role))
            else:
                self._keep_an_owner(session, workspace_id, membership, role)
                membership.role = role
            audit.add(
                session,
                audit.Entry(
                    "member.role",
                    self.access.subject,
                    workspace_id,
                    f"user:{user_id}",
                    detail={"from": before, "to": role},
                ),
            )

    def remove_member(self, workspace_id: str, user_id: uuid.UUID) -> None:
        self._require_manager(workspace_id, Role.viewer, "remove members")
        with unit_of_work(self.sessions) as session:
            membership = session.get(Membership, (user_id, workspace_id))
            if membership is None:
                raise NotFound(f"user {user_id} is not a member of {workspace_id}")
            if Role(membership.role) == Role.owner and self.access.role != Role.owner:
                raise Forbidden("only an owner may remove an owner")
            self._keep_an_owner(session, workspace_id, membership, None)
            session.delete(membership)
            audit.add(
                session,
                audit.Entry(
                    "member.remove",
                    self.access.subject,
                    workspace_id,
                    f"user:{user_id}",
                    detail={"role": membership.role},
                ),
            )

    def ensure_local_user(self) -> User:
        """The one user of local mode: an instance admin, owner of the default workspace."""
        with unit_of_work(self.sessions) as session:
            # Concurrent first requests race to make it; the loser's insert does nothing.
            session.execute(
                insert(User)
                .values(id=uuid.uuid4(), email=LOCAL_EMAIL, name="Local user", is_admin=True)
                .on_conflict_do_nothing(index_elements=["email"])
            )
            user = session.scalars(select(User).where(User.email == LOCAL_EMAIL)).one()
            session.execute(
                insert(Membership)
                .values(user_id=user.id, workspace_id=DEFAULT_WORKSPACE, role=Role.owner)
                .on_conflict_do_nothing()
            )
            session.expunge(user)
            return user

    def _require_manager(self, workspace_id: str, role: Role, action: str) -> None:
        """Workspace admins manage members up to admin; only owners make owners."""
        if self.access.instance_admin:
            return
        self.access.check(workspace_id, f"workspace {workspace_id}")
        self.access.require(Role.admin, action)
        self.access.require_scope(Scope.members, action)
        if role == Role.owner:
            self.access.require(Role.owner, "make owners")

    def _keep_an_owner(
        self, session: Session, workspace_id: str, membership: Membership, role: Role | None
    ) -> None:
        if Role(membership.role) != Role.owner or role == Role.owner:
            return
        if self.access.role != Role.owner and not self.access.instance_admin:
            raise Forbidden("only an owner may change an owner's role")
        if not _other_owners(session, workspace_id, membership.user_id):
            raise Conflict(f"workspace {workspace_id} must keep at least one owner")

    def _check_not_last_owner(self, session: Session, user_id: uuid.UUID, action: str) -> None:
        owned = session.scalars(
            select(Membership.workspace_id).where(
                Membership.user_id == user_id, Membership.role == Role.owner
            )
        ).all()
        orphaned = sorted(ws for ws in owned if not _other_owners(session, ws, user_id))
        if orphaned:
            raise Conflict(
                f"cannot {action} the last owner of workspace {', '.join(orphaned)}; make "
                "someone else its owner first"
            )

    def _end_sessions(self, session: Session, user_id: uuid.UUID, keep: str | None) -> None:
        """Revoke the user's refresh tokens and their live access tokens (all but `keep`)."""
        if self.revocations is None:
            raise ConfigurationError("this account service cannot end sign-ins")
        statement = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(RefreshToken.family != uuid.UUID(hex=keep))
        session.execute(statement.values(revoked_at=utcnow()))
        lifetime = self.revocations.ttl
        self.revocations.revoke(recent_sessions(session, user_id, lifetime, keep=keep))

    def labels(self, workspace_id: str | None, subjects: set[str]) -> dict[str, str]:
        """How the subjects ("user:<id>", "key:<id>") of a workspace's records appear to its
        members: members by name and email, the workspace's keys by name, anyone else as
        someone outside the workspace (their ids and emails are not the members' to see).
        Instance administrators see every subject as it is."""
        users = {_ref(s, "user:") for s in subjects} - {None}
        keys = {_ref(s, "key:") for s in subjects} - {None}
        out: dict[str, str] = {}
        with self.sessions() as session:
            if users:
                statement = select(User.id, User.name, User.email).where(User.id.in_(users))
                if not self.access.instance_admin:
                    statement = statement.join(
                        Membership,
                        (Membership.user_id == User.id) & (Membership.workspace_id == workspace_id),
                    )
                for user_id, name, email in session.execute(statement):
                    out[f"user:{user_id}"] = f"{name} <{email}>" if name else email
            if keys:
                named = select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(keys))
                if not self.access.instance_admin:
                    named = named.where(ApiKey.workspace_id == workspace_id)
                for key_id, key_name in session.execute(named):
                    out[f"key:{key_id}"] = f"API key {key_name}"
        for subject in subjects:
            if subject.startswith(("user:", "key:")) and subject not in out:
                out[subject] = subject if self.access.instance_admin else OUTSIDER
        return out

    def _workspace(self, session: Session, workspace_id: str) -> Workspace:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {workspace_id} not found")
        return workspace

    def _visible(self, session: Session, user_id: uuid.UUID) -> bool:
        if self.access.instance_admin or user_id == self.access.user_id:
            return True
        return session.get(Membership, (user_id, self.access.workspace_id)) is not None


def _other_owners(session: Session, workspace_id: str, user_id: uuid.UUID) -> int:
    """Enabled owners of the workspace besides `user_id`."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.workspace_id == workspace_id,
                Membership.role == Role.owner,
                Membership.user_id != user_id,
                User.disabled.is_(False),
            )
        )
        or 0
    )


def _held_by(exc: IntegrityError) -> str | None:
    """The table whose rows still point at a deleted row, from PostgreSQL's message."""
    match = re.search(r'on table "(\w+)"\s*$', str(exc.orig).splitlines()[0])
    return match.group(1).replace("_", " ") if match else None


def _ref(subject: str, prefix: str) -> uuid.UUID | None:
    if not subject.startswith(prefix):
        return None
    try:
        return uuid.UUID(subject[len(prefix) :])
    except ValueError:
        return None


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug or uuid.uuid4().hex[:12]
