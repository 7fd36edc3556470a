"""Alembic environment: runs migrations on the connection `citeline.db.migrate` hands over.

The database layer knows no domain's models; whoever compares the schema with the migrations
(`citeline.schema`) hands its metadata over as `target_metadata`."""

from __future__ import annotations

from alembic import context

attributes = context.config.attributes
context.configure(
    connection=attributes["connection"],
    target_metadata=attributes.get("target_metadata"),
    compare_type=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
