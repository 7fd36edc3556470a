"""What the MCP servers API accepts and returns. Secrets go in, only their names come out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PolicyName = Literal["allow", "ask", "deny"]
RoleName = Literal["viewer", "member", "admin", "owner"]


class McpServerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, description="Letters, digits, '_' and '-'")
    transport: Literal["stdio", "http"]
    command: str | None = Field(
        default=None, max_length=1000, description="stdio: one allowlisted executable"
    )
    args: list[str] = Field(default_factory=list, max_length=64, description="stdio arguments")
    env: dict[str, str] = Field(
        default_factory=dict, description="stdio: the only environment secrets it may see"
    )
    url: str | None = Field(default=None, max_length=2000, description="http: the MCP endpoint")
    headers: dict[str, str] = Field(default_factory=dict, description="http: e.g. Authorization")
    user_env: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="stdio: environment variables each user sets for themselves",
    )
    user_headers: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="http: headers each user sets for themselves (e.g. Authorization)",
    )


class McpServerOut(BaseModel):
    id: uuid.UUID
    name: str
    transport: str
    command: str | None
    args: list[str]
    url: str | None
    env_names: list[str] = Field(description="Names of the stored environment secrets")
    header_names: list[str] = Field(description="Names of the stored headers")
    user_env_names: list[str] = Field(description="Environment variables each user sets")
    user_header_names: list[str] = Field(description="Headers each user sets")
    created_by: str
    created_at: datetime


class McpServerList(BaseModel):
    servers: list[McpServerOut]


class McpToolOut(BaseModel):
    name: str = Field(description="The qualified name a model calls it by")
    tool: str = Field(description="The server's own name for it")
    description: str
    input_schema: dict[str, Any]
    read_only: bool | None
    destructive: bool | None
    open_world: bool | None
    policies: dict[str, PolicyName] = Field(description="By role, defaults and overrides applied")
    policy: PolicyName = Field(description="The caller's own")


class McpToolList(BaseModel):
    server_id: uuid.UUID
    tools: list[McpToolOut]


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=200)
    role: RoleName
    policy: PolicyName


class PoliciesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: list[PolicyIn] = Field(
        max_length=1000, description="Replaces the server's overrides; [] restores the defaults"
    )


class PoliciesOut(BaseModel):
    server_id: uuid.UUID
    policies: list[PolicyIn]


class CredentialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: dict[str, str] = Field(
        default_factory=dict, description="stdio: values of the server's per-user variables"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="http: values of the server's per-user headers"
    )


class CredentialsOut(BaseModel):
    """Which of the server's per-user keys the caller has set. Values never come back."""

    server_id: uuid.UUID
    env_names: list[str] = Field(description="Per-user variables you have set")
    header_names: list[str] = Field(description="Per-user headers you have set")
    missing_env: list[str] = Field(description="Per-user variables you have not set")
    missing_headers: list[str] = Field(description="Per-user headers you have not set")
    complete: bool = Field(description="Every per-user key is set: the server's tools work")
    updated_at: datetime | None
