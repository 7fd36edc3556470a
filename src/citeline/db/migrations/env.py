"""Alembic environment: runs migrations on the connection `citeline.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

from citeline.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
