"""knowledge bases, conversations and jobs belong to a workspace by foreign key

A workspace cannot be deleted while it has knowledge bases; its conversations and jobs go
with it. Jobs and conversations left behind by workspaces deleted earlier are removed first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEYS = (("knowledge_bases", "RESTRICT"), ("conversations", "CASCADE"), ("jobs", "CASCADE"))


def upgrade() -> None:
    for table in ("jobs", "conversations"):
        op.execute(
            f"DELETE FROM {table} t WHERE t.workspace_id IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM workspaces w WHERE w.id = t.workspace_id)"
        )
    for table, ondelete in KEYS:
        op.create_foreign_key(
            f"fk_{table}_workspace_id_workspaces",
            table,
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete=ondelete,
        )


def downgrade() -> None:
    for table, _ in KEYS:
        op.drop_constraint(f"fk_{table}_workspace_id_workspaces", table, type_="foreignkey")
