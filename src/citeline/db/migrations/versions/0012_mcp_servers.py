"""MCP servers and their tool policies

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("command", sa.Text()),
        sa.Column("args", postgresql.JSONB(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("env_names", postgresql.JSONB(), nullable=False),
        sa.Column("header_names", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mcp_servers"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_mcp_servers_workspace_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_mcp_servers_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_mcp_servers_workspace_id", "mcp_servers", ["workspace_id"])
    op.create_table(
        "mcp_tool_policies",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("tool_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("policy", sa.String(8), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "tool_name", "role", name="pk_mcp_tool_policies"),
        sa.ForeignKeyConstraint(
            ["server_id"], ["mcp_servers.id"], name="fk_mcp_tool_policies_server_id_mcp_servers",
            ondelete="CASCADE",
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("mcp_tool_policies")
    op.drop_index("ix_mcp_servers_workspace_id", "mcp_servers")
    op.drop_table("mcp_servers")
