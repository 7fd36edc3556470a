"""API keys bounded by their maker (creator, parent key, scopes); invitations; an owner for
every workspace

Existing keys made by a user are tied to that user; keys made with another key are tied to
that key and its maker. A key whose maker no longer exists is revoked, since it would
otherwise act with nobody's authority. Workspaces without an owner get the first instance
administrator as their owner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MAX_CHAIN = 20


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("creator_id", sa.Uuid()))
    op.add_column("api_keys", sa.Column("parent_id", sa.Uuid()))
    op.add_column(
        "api_keys",
        sa.Column("scopes", postgresql.JSONB(), nullable=False, server_default="[]"),
    )
    op.create_foreign_key(
        "fk_api_keys_creator_id_users", "api_keys", "users", ["creator_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.create_foreign_key(
        "fk_api_keys_parent_id_api_keys", "api_keys", "api_keys", ["parent_id"], ["id"],
        ondelete="CASCADE",
    )  # fmt: skip
    op.create_index("ix_api_keys_creator_id", "api_keys", ["creator_id"])
    op.create_index("ix_api_keys_parent_id", "api_keys", ["parent_id"])
    _tie_existing_keys()

    op.create_table(
        "invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invited_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("declined_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_invitations"),
        sa.UniqueConstraint("token_hash", name="uq_invitations_token_hash"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_invitations_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_invitations_email", "invitations", ["email"])
    op.create_index("ix_invitations_workspace_id", "invitations", ["workspace_id"])

    op.execute(
        """
        INSERT INTO memberships (user_id, workspace_id, role, created_at)
        SELECT admin.id, w.id, 'owner', now()
        FROM workspaces w,
             LATERAL (SELECT id FROM users WHERE is_admin AND NOT disabled
                      ORDER BY created_at LIMIT 1) admin
        WHERE NOT EXISTS (SELECT 1 FROM memberships m
                          WHERE m.workspace_id = w.id AND m.role = 'owner')
        ON CONFLICT (user_id, workspace_id) DO UPDATE SET role = 'owner'
        """
    )


def _tie_existing_keys() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, created_by FROM api_keys")).all()
    users = {row[0] for row in connection.execute(sa.text("SELECT id FROM users"))}
    makers = {key_id: str(created_by) for key_id, created_by in rows}

    def resolve(key_id: uuid.UUID) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """(creator user, parent key) of a key, following keys made with keys."""
        parent = None
        current = key_id
        for _ in range(MAX_CHAIN):
            kind, _, ref = makers.get(current, "").partition(":")
            try:
                ref_id = uuid.UUID(ref)
            except ValueError:
                return None, parent
            if kind == "user":
                return (ref_id if ref_id in users else None), parent
            if kind != "key" or ref_id not in makers:
                return None, parent
            parent = parent or ref_id
            current = ref_id
        return None, parent

    for key_id, created_by in rows:
        creator, parent = resolve(key_id)
        if creator is None and str(created_by) == "system":
            continue
        if creator is None:
            connection.execute(
                sa.text(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id"
                ),
                {"id": key_id},
            )
            continue
        connection.execute(
            sa.text(
                "UPDATE api_keys SET creator_id = :creator, parent_id = :parent WHERE id = :id"
            ),
            {"creator": creator, "parent": parent, "id": key_id},
        )


def downgrade() -> None:
    op.drop_index("ix_invitations_workspace_id", "invitations")
    op.drop_index("ix_invitations_email", "invitations")
    op.drop_table("invitations")
    op.drop_index("ix_api_keys_parent_id", "api_keys")
    op.drop_index("ix_api_keys_creator_id", "api_keys")
    op.drop_constraint("fk_api_keys_parent_id_api_keys", "api_keys", type_="foreignkey")
    op.drop_constraint("fk_api_keys_creator_id_users", "api_keys", type_="foreignkey")
    op.drop_column("api_keys", "scopes")
    op.drop_column("api_keys", "parent_id")
    op.drop_column("api_keys", "creator_id")
