"""metric values may be NaN (stored as NULL on SQLite)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:58:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("metrics", "latest_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    for table in ("metrics", "latest_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("value", existing_type=sa.Float(), nullable=False)
