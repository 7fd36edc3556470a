"""MCP servers' per-user keys, and each user's own credentials for them

Revision ID: 0016_mcp_user_credentials
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_mcp_user_credentials"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ("user_env_names", "user_header_names"):
        op.add_column(
            "mcp_servers",
            sa.Column(
                name, postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
            ),
        )
    op.create_table(
        "mcp_user_credentials",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("env_names", postgresql.JSONB(), nullable=False),
        sa.Column("header_names", postgresql.JSONB(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "user_id", name="pk_mcp_user_credentials"),
        sa.ForeignKeyConstraint(
            ["server_id"], ["mcp_servers.id"],
            name="fk_mcp_user_credentials_server_id_mcp_servers", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_mcp_user_credentials_user_id_users",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_mcp_user_credentials_user_id", "mcp_user_credentials", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_mcp_user_credentials_user_id", "mcp_user_credentials")
    op.drop_table("mcp_user_credentials")
    op.drop_column("mcp_servers", "user_header_names")
    op.drop_column("mcp_servers", "user_env_names")
