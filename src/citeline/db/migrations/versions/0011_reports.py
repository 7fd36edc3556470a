"""reports, their sections and their exports

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("knowledge_base_ids", postgresql.JSONB(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("target_sections", sa.Integer(), nullable=False),
        sa.Column("fixed_outline", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("document", postgresql.JSONB()),
        sa.Column("closest", postgresql.JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("first_section_at"),
        _when("finished_at"),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_reports_workspace_id_workspaces",
            ondelete="RESTRICT",
        ),
    )  # fmt: skip
    op.create_index("ix_reports_workspace_created", "reports", ["workspace_id", "created_at"])
    op.create_table(
        "report_sections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("questions", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("sentences", postgresql.JSONB(), nullable=False),
        sa.Column("citations", postgresql.JSONB(), nullable=False),
        sa.Column("draft", sa.Text()),
        sa.Column("passages", postgresql.JSONB(), nullable=False),
        sa.Column("model_calls", postgresql.JSONB(), nullable=False),
        sa.Column("dropped", postgresql.JSONB(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("started_at"),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_report_sections"),
        sa.UniqueConstraint("report_id", "ordinal", name="uq_report_sections_report_id"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_report_sections_report_id_reports",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_report_sections_report_id", "report_sections", ["report_id"])
    op.create_table(
        "report_exports",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        _when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("report_id", "version", "format", name="pk_report_exports"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name="fk_report_exports_report_id_reports",
            ondelete="CASCADE",
        ),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("report_exports")
    op.drop_index("ix_report_sections_report_id", "report_sections")
    op.drop_table("report_sections")
    op.drop_index("ix_reports_workspace_created", "reports")
    op.drop_table("reports")
