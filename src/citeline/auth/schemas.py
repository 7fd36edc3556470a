"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.auth.access import Role, Scope
from citeline.auth.models import ApiKey, AuditEvent, Invitation, User, Workspace


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    workspace_id: str
    role: Role


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    is_admin: bool
    disabled: bool
    sso: bool
    role: Role | None = None  # in the workspace the listing is about
    created_at: datetime

    @classmethod
    def of(cls, user: User, role: Role | None = None) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            is_admin=user.is_admin,
            disabled=user.disabled,
            sso=user.oidc_subject is not None,
            role=role,
            created_at=user.created_at,
        )


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    password: str | None = Field(
        default=None, max_length=1024, description="omit for single-sign-on-only accounts"
    )
    name: str = Field(default="", max_length=200)
    role: Role = Role.member
    workspace_id: str | None = Field(default=None, description="default: yours")
    is_admin: bool = False


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=1024)
    current_password: str | None = Field(
        default=None, max_length=1024, description="needed to change your own password"
    )
    disabled: bool | None = None
    is_admin: bool | None = None


class WorkspaceOut(BaseModel):
    id: str
    name: str
    role: Role | None = None  # the caller's
    created_at: datetime

    @classmethod
    def of(cls, workspace: Workspace, role: Role | None = None) -> WorkspaceOut:
        return cls(id=workspace.id, name=workspace.name, role=role, created_at=workspace.created_at)


class WorkspaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=63, description="default: from the name")
    owner_id: uuid.UUID | None = Field(default=None, description="default: you")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class MeOut(BaseModel):
    user: UserOut
    workspace: WorkspaceOut
    role: Role
    mode: str
    workspaces: list[WorkspaceOut]


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.member
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)
    scopes: list[Scope] = Field(
        default_factory=list,
        max_length=len(Scope),
        description="api_keys: may make and revoke keys; members: may manage members",
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    workspace_id: str
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: list[Scope]
    parent_id: uuid.UUID | None
    key: str | None = Field(default=None, description="the secret; shown only at creation")

    @classmethod
    def of(cls, row: ApiKey, key: str | None = None, created_by: str | None = None) -> ApiKeyOut:
        return cls(
            id=row.id,
            name=row.name,
            workspace_id=row.workspace_id,
            role=Role(row.role),
            scopes=[Scope(scope) for scope in row.scopes],
            parent_id=row.parent_id,
            created_by=created_by or row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            key=key,
        )


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    workspace_id: str | None
    action: str
    target: str | None
    outcome: str
    client: str | None
    request_id: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent, labels: dict[str, str]) -> AuditOut:
        """The event with user and key ids shown as `labels` gives them."""
        out = cls.model_validate(event, from_attributes=True)
        out.actor = labels.get(event.actor, event.actor)
        if event.target is not None:
            out.target = labels.get(event.target, event.target)
        return out


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    role: Role = Role.member


class InvitationOut(BaseModel):
    id: uuid.UUID
    workspace_id: str
    workspace_name: str | None = None
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    status: str  # pending | accepted | declined | revoked
    token: str | None = Field(
        default=None, description="the one-time secret of the invitation link; shown once"
    )
    accept_url: str | None = Field(default=None, description="the link to send the person")

    @classmethod
    def of(cls, row: Invitation, token: str | None = None, base_url: str = "") -> InvitationOut:
        status = (
            "accepted"
            if row.accepted_at
            else "declined"
            if row.declined_at
            else "revoked"
            if row.revoked_at
            else "pending"
        )
        return cls(
            id=row.id,
            workspace_id=row.workspace_id,
            email=row.email,
            role=Role(row.role),
            created_at=row.created_at,
            expires_at=row.expires_at,
            status=status,
            token=token,
            accept_url=f"{base_url}/#/invitation/{token}" if token else None,
        )


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(default="", max_length=200)


class OidcConfigOut(BaseModel):
    enabled: bool
    login_url: str


class AuthConfigOut(BaseModel):
    mode: str = Field(description="local: no sign-in (loopback only); required: tokens or keys")
    oidc: OidcConfigOut


class UserList(BaseModel):
    users: list[UserOut]


class MemberList(BaseModel):
    members: list[UserOut]


class WorkspaceList(BaseModel):
    workspaces: list[WorkspaceOut]


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]


class AuditList(BaseModel):
    events: list[AuditOut]


class InvitationList(BaseModel):
    invitations: list[InvitationOut]
