"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.auth.access import Role
from citeline.auth.models import ApiKey, AuditEvent, User, Workspace


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
    key: str | None = Field(default=None, description="the secret; shown only at creation")

    @classmethod
    def of(cls, row: ApiKey, key: str | None = None) -> ApiKeyOut:
        return cls(
            id=row.id,
            name=row.name,
            workspace_id=row.workspace_id,
            role=Role(row.role),
            created_by=row.created_by,
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
    def of(cls, event: AuditEvent) -> AuditOut:
        return cls.model_validate(event, from_attributes=True)
