"""fan-out and fan-in: job groups, a job's parent and group, the waiting state

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


STATES = ("queued", "scheduled", "started", "finished", "failed", "stopped")


def _states(states: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{state}'" for state in states) + ")"


def upgrade() -> None:
    op.drop_constraint("ck_jobs_state", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_state", "jobs", _states((*STATES, "waiting")))
    op.create_table(
        "job_groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64)),
        sa.Column("owner", sa.String(200)),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stopped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("on_failure", sa.String(16), nullable=False, server_default="continue"),
        sa.Column("follow_up_id", sa.Uuid(), nullable=False),
        sa.Column("follow_up_kind", sa.String(100), nullable=False),
        sa.Column("follow_up_target", sa.String(300), nullable=False),
        sa.Column("follow_up_queue", sa.String(50), nullable=False),
        sa.Column("follow_up_args", postgresql.JSONB(), nullable=False),
        sa.Column("follow_up_attempts", sa.Integer(), nullable=False),
        sa.Column("follow_up_timeout", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_job_groups"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["jobs.id"], name="fk_job_groups_parent_id_jobs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_job_groups_parent_id", "job_groups", ["parent_id"])
    op.add_column("jobs", sa.Column("parent_id", sa.Uuid()))
    op.add_column("jobs", sa.Column("group_id", sa.Uuid()))
    op.create_foreign_key(
        "fk_jobs_parent_id_jobs", "jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        "fk_jobs_group_id_job_groups", "jobs", "job_groups", ["group_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.create_index("ix_jobs_parent_id", "jobs", ["parent_id"])
    op.create_index("ix_jobs_group_id", "jobs", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_group_id", "jobs")
    op.drop_index("ix_jobs_parent_id", "jobs")
    op.drop_constraint("fk_jobs_group_id_job_groups", "jobs", type_="foreignkey")
    op.drop_constraint("fk_jobs_parent_id_jobs", "jobs", type_="foreignkey")
    op.drop_column("jobs", "group_id")
    op.drop_column("jobs", "parent_id")
    op.drop_index("ix_job_groups_parent_id", "job_groups")
    op.drop_table("job_groups")
    op.execute("UPDATE jobs SET state = 'stopped' WHERE state = 'waiting'")
    op.drop_constraint("ck_jobs_state", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_state", "jobs", _states(STATES))
