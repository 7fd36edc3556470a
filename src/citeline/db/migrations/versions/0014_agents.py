"""agents, their tasks and the tasks' steps; the suspended job state

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


STATES = ("queued", "scheduled", "started", "waiting", "finished", "failed", "stopped")


def _states(states: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{state}'" for state in states) + ")"


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.drop_constraint("ck_jobs_state", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_state", "jobs", _states((*STATES, "suspended")))
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("knowledge_base_ids", postgresql.JSONB(), nullable=False),
        sa.Column("tools", postgresql.JSONB(), nullable=False),
        sa.Column("workflow", postgresql.JSONB(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("builder_session_id", sa.String(64)),
        sa.Column("created_by", sa.String(200)),
        _when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("workspace_id", "name", "version", name="uq_agents_workspace_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_agents_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_table(
        "agent_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("submitted_by", sa.String(200)),
        sa.Column("cursor", sa.String(40)),
        sa.Column("outputs", postgresql.JSONB(), nullable=False),
        sa.Column("output", sa.Text()),
        sa.Column("citations", postgresql.JSONB(), nullable=False),
        sa.Column("review", postgresql.JSONB()),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.Column("slot_attempt", sa.Integer()),
        sa.Column("retry_of", sa.Uuid()),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_tasks"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_agent_tasks_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_agent_tasks_agent_id_agents",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_agent_tasks_job_id_jobs", ondelete="SET NULL",
        ),
    )  # fmt: skip
    op.create_index("ix_agent_tasks_agent_created", "agent_tasks", ["agent_id", "created_at"])
    op.create_index("ix_agent_tasks_workspace_id", "agent_tasks", ["workspace_id"])
    op.create_index("ix_agent_tasks_job_id", "agent_tasks", ["job_id"])
    op.create_table(
        "agent_task_steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(40), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("inputs", postgresql.JSONB(), nullable=False),
        sa.Column("outputs", postgresql.JSONB(), nullable=False),
        sa.Column("model_calls", postgresql.JSONB(), nullable=False),
        sa.Column("tool_calls", postgresql.JSONB(), nullable=False),
        sa.Column("citations", postgresql.JSONB(), nullable=False),
        sa.Column("error", sa.Text()),
        _when("started_at", nullable=False),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_agent_task_steps"),
        sa.UniqueConstraint("task_id", "seq", name="uq_agent_task_steps_task_id"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["agent_tasks.id"], name="fk_agent_task_steps_task_id_agent_tasks",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_agent_task_steps_task_id", "agent_task_steps", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_task_steps_task_id", "agent_task_steps")
    op.drop_table("agent_task_steps")
    op.drop_index("ix_agent_tasks_job_id", "agent_tasks")
    op.drop_index("ix_agent_tasks_workspace_id", "agent_tasks")
    op.drop_index("ix_agent_tasks_agent_created", "agent_tasks")
    op.drop_table("agent_tasks")
    op.drop_table("agents")
    op.execute("UPDATE jobs SET state = 'stopped' WHERE state = 'suspended'")
    op.drop_constraint("ck_jobs_state", "jobs", type_="check")
    op.create_check_constraint("ck_jobs_state", "jobs", _states(STATES))
