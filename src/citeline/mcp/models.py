"""MCP servers registered in a workspace, and the tool policies its admins set on them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from citeline.db.base import Base, utcnow


class McpServer(Base):
    __tablename__ = "mcp_servers"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    transport: Mapped[str] = mapped_column(String(8))  # stdio | http
    command: Mapped[str | None] = mapped_column(Text)
    args: Mapped[list[str]] = mapped_column(JSONB, default=list)
    url: Mapped[str | None] = mapped_column(Text)
    # {"env": {...}, "headers": {...}} encrypted (citeline.mcp.secrets); never returned.
    secrets: Mapped[str] = mapped_column(Text)
    env_names: Mapped[list[str]] = mapped_column(JSONB, default=list)  # shown, values hidden
    header_names: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Keys each user sets for themselves (McpUserCredentials); a server that has any opens a
    # connection per user and never falls back to the workspace's values for them.
    user_env_names: Mapped[list[str]] = mapped_column(JSONB, default=list)
    user_header_names: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def per_user(self) -> bool:
        """Does each user bring their own secrets for some of its keys?"""
        return bool(self.user_env_names or self.user_header_names)


class McpUserCredentials(Base):
    """One user's own secrets for one server: the values of its per-user keys."""

    __tablename__ = "mcp_user_credentials"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mcp_servers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # {"env": {...}, "headers": {...}} encrypted (citeline.mcp.secrets); never returned.
    secrets: Mapped[str] = mapped_column(Text)
    env_names: Mapped[list[str]] = mapped_column(JSONB, default=list)
    header_names: Mapped[list[str]] = mapped_column(JSONB, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class McpToolPolicy(Base):
    """An admin's override of one tool's default policy for one role."""

    __tablename__ = "mcp_tool_policies"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mcp_servers.id", ondelete="CASCADE"), primary_key=True
    )
    tool_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    policy: Mapped[str] = mapped_column(String(8))  # allow | ask | deny
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool_name, "role": self.role, "policy": self.policy}
