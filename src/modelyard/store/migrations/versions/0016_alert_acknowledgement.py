"""an alert can be acknowledged by hand: who, when, with what comment

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_comment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("acknowledge_comment")
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
