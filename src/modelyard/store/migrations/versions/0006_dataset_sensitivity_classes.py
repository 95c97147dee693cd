"""sensitivity classes of datasets (pii, confidential, ...)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_classes",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_dataset_classes")),
    )


def downgrade() -> None:
    op.drop_table("dataset_classes")
