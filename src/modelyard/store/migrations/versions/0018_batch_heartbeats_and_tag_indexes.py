"""a batch job's heartbeat (a killed job shows as abandoned); indexes for tag searches

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_model_tags_key_value", "model_tags", ["key", "value"])
    op.create_index("ix_version_tags_key_value", "version_tags", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_version_tags_key_value", table_name="version_tags")
    op.drop_index("ix_model_tags_key_value", table_name="model_tags")
    with op.batch_alter_table("batch_jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
