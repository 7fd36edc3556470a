"""model registry: versions, aliases, generations and token usage

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("base_url", sa.String(500)),
        sa.Column("credential", sa.String(100)),
        sa.Column("parameters", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("prompt_template", sa.Text()),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("routes", postgresql.JSONB(), nullable=False),
        sa.Column("fallback_version_id", sa.Uuid()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("name", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["fallback_version_id"],
            ["model_versions.id"],
            name="fk_model_aliases_fallback_version_id_model_versions",
            ondelete="RESTRICT",
        ),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("alias", sa.String(100)),
        sa.Column("version_id", sa.Uuid()),
        sa.Column("version_label", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("conversation", sa.String(200)),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("fallback", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("first_token_ms", sa.Float()),
        sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_generations"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_generations_version_id_model_versions",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_generations_alias_created_at", "generations", ["alias", "created_at"])
    op.create_index("ix_generations_version_id", "generations", ["version_id"])
    op.create_table(
        "token_usage",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("subject", "model_name", "day", name="pk_token_usage"),
    )


def downgrade() -> None:
    op.drop_table("token_usage")
    op.drop_table("generations")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
