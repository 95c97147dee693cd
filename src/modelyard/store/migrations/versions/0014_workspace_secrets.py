"""secrets belong to a workspace: only its monitors' channels may use them

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("workspace", sa.String(length=128), nullable=False, server_default="default")
        )


def downgrade() -> None:
    with op.batch_alter_table("secrets", schema=None) as batch_op:
        batch_op.drop_column("workspace")
