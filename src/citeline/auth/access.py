"""What a caller may see and do, handed to every service that reads or changes stored data.

Services, not routes, enforce it: a resource outside the caller's workspace does not exist for
them (404, so ids reveal nothing), and a role too low for a change is refused (403)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from citeline.errors import Forbidden, NotFound

DEFAULT_WORKSPACE = "default"


class Scope(StrEnum):
    """What an API key may do beyond its role's reading and writing; a user's sign-in may do
    everything its role allows, a key only what its scopes name."""

    api_keys = "api_keys"  # make and revoke API keys
    members = "members"  # invite, change and remove members


class Role(StrEnum):
    viewer = "viewer"
    member = "member"
    admin = "admin"
    owner = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    # By power, not by spelling (str would compare "viewer" > "admin").
    def __ge__(self, other: object) -> bool:
        return self.rank >= _rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > _rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= _rank(other)

    def __lt__(self, other: object) -> bool:
        return self.rank < _rank(other)


def _rank(other: object) -> int:
    if not isinstance(other, Role):
        raise TypeError(f"cannot compare a role with {other!r}")
    return other.rank


@dataclass(frozen=True)
class Access:
    """A caller acting in one workspace with one role. `workspace_id` None is the system
    itself (workers, the CLI on the server's own machine), which sees every workspace."""

    subject: str  # "user:<id>", "key:<id>" or "system"; what usage and audit rows name
    workspace_id: str | None
    role: Role
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    instance_admin: bool = False  # may manage users, workspaces and model providers
    scopes: frozenset[Scope] | None = None  # None: a person (or the system), bound only by role
    session_id: str | None = None  # the sign-in an access token belongs to

    @classmethod
    def system(cls) -> Access:
        return cls("system", None, Role.owner, instance_admin=True)

    @property
    def is_system(self) -> bool:
        return self.workspace_id is None

    def sees(self, workspace_id: str | None) -> bool:
        return self.is_system or workspace_id == self.workspace_id

    def check(self, workspace_id: str | None, what: str) -> None:
        """Refuse, as not found, anything of another workspace."""
        if not self.sees(workspace_id):
            raise NotFound(f"{what} not found")

    def require(self, role: Role, action: str) -> None:
        if not self.role >= role:
            raise Forbidden(f"your role ({self.role}) may not {action}; it needs {role} or above")

    def require_scope(self, scope: Scope, action: str) -> None:
        if self.scopes is not None and scope not in self.scopes:
            raise Forbidden(
                f"this API key may not {action}: that needs a key with the {scope.value!r} scope"
            )

    def require_instance_admin(self, action: str) -> None:
        if not self.instance_admin:
            raise Forbidden(f"only an instance administrator may {action}")

    def owned_workspace(self) -> str:
        """The workspace new resources go into."""
        return self.workspace_id or DEFAULT_WORKSPACE
