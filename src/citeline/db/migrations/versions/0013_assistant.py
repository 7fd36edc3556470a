"""assistant conversations, their messages, runs and tool calls

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "assistant_conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("knowledge_base_ids", postgresql.JSONB(), nullable=False),
        sa.Column("tools", postgresql.JSONB()),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assistant_conversations"),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"],
            name="fk_assistant_conversations_workspace_id_workspaces", ondelete="RESTRICT",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_assistant_conversations_ws", "assistant_conversations", ["workspace_id", "updated_at"]
    )
    op.create_table(
        "assistant_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid()),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("citations", postgresql.JSONB(), nullable=False),
        _when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assistant_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["assistant_conversations.id"],
            name="fk_assistant_messages_conversation_id_assistant_conversations",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_assistant_messages_conv", "assistant_messages", ["conversation_id", "ordinal"]
    )
    op.create_table(
        "assistant_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        _when("created_at", nullable=False),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_assistant_runs"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["assistant_conversations.id"],
            name="fk_assistant_runs_conversation_id_assistant_conversations",
            ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_assistant_runs_conversation_id", "assistant_runs", ["conversation_id"])
    op.create_table(
        "assistant_tool_calls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.String(100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("arguments", postgresql.JSONB(), nullable=False),
        sa.Column("policy", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Float()),
        _when("created_at", nullable=False),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_assistant_tool_calls"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["assistant_runs.id"],
            name="fk_assistant_tool_calls_run_id_assistant_runs", ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index("ix_assistant_tool_calls_run_id", "assistant_tool_calls", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_assistant_tool_calls_run_id", "assistant_tool_calls")
    op.drop_table("assistant_tool_calls")
    op.drop_index("ix_assistant_runs_conversation_id", "assistant_runs")
    op.drop_table("assistant_runs")
    op.drop_index("ix_assistant_messages_conv", "assistant_messages")
    op.drop_table("assistant_messages")
    op.drop_index("ix_assistant_conversations_ws", "assistant_conversations")
    op.drop_table("assistant_conversations")
