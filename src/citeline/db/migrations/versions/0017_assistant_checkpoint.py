"""An assistant run's checkpoint: what its next attempt needs to go on after a pause for
approval (the model's turns so far, the numbered passages, the usage); and suspended jobs
lose the `run_at` an earlier deferral left, which the reaper now reads as the time a
suspended job waits until

Revision ID: 0017_assistant_checkpoint
Revises: 0016_mcp_user_credentials
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017_assistant_checkpoint"
down_revision = "0016_mcp_user_credentials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assistant_runs", sa.Column("checkpoint", postgresql.JSONB(), nullable=True))
    op.execute("UPDATE jobs SET run_at = NULL WHERE state = 'suspended'")


def downgrade() -> None:
    op.drop_column("assistant_runs", "checkpoint")
