"""Relational storage: PostgreSQL (embedded or external) through SQLAlchemy 2 and Alembic."""
