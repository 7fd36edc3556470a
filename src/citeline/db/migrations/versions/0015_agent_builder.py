"""agent builder sessions

Revision ID: 0015
Revises: 0013, 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "builder_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("fields", postgresql.JSONB(), nullable=False),
        sa.Column("suggested_tools", postgresql.JSONB(), nullable=False),
        sa.Column("history", postgresql.JSONB(), nullable=False),
        sa.Column("final_prompt", sa.Text()),
        sa.Column("workflow_json", postgresql.JSONB()),
        sa.Column("tools_config", postgresql.JSONB()),
        _when("created_at", nullable=False),
        _when("last_active_at", nullable=False),
        _when("completed_at"),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_builder_sessions"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_builder_sessions_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_builder_sessions_workspace_created", "builder_sessions", ["workspace_id", "created_at"]
    )
    op.create_index(
        "ix_builder_sessions_status_active", "builder_sessions", ["status", "last_active_at"]
    )


def downgrade() -> None:
    op.drop_table("builder_sessions")
