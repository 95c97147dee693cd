"""approvals: a workspace policy and the requests, approvals and rejections of versions

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_policies",
        sa.Column("workspace", sa.String(length=128), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", name=op.f("pk_approval_policies")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_approvals_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index("ix_approvals_version", "approvals", ["model_id", "version"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_approvals_version", table_name="approvals")
    op.drop_table("approvals")
    op.drop_table("approval_policies")
