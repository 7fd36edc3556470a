"""model aliases per workspace ('' = shared by all); generations record their workspace

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "model_aliases",
        sa.Column("workspace_id", sa.String(64), nullable=False, server_default=""),
    )
    op.drop_constraint("pk_model_aliases", "model_aliases", type_="primary")
    op.create_primary_key("pk_model_aliases", "model_aliases", ["workspace_id", "name"])
    op.add_column("generations", sa.Column("workspace_id", sa.String(64)))
    op.create_index(
        "ix_generations_workspace_alias_created_at",
        "generations",
        ["workspace_id", "alias", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_generations_workspace_alias_created_at", "generations")
    op.drop_column("generations", "workspace_id")
    op.execute("DELETE FROM model_aliases WHERE workspace_id <> ''")
    op.drop_constraint("pk_model_aliases", "model_aliases", type_="primary")
    op.create_primary_key("pk_model_aliases", "model_aliases", ["name"])
    op.drop_column("model_aliases", "workspace_id")
