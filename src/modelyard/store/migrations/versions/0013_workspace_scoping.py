"""workspaces own experiments, models, endpoints and datasets

Everything that existed before belongs to the ``default`` workspace.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_OWNED = ("experiments", "models", "endpoints", "datasets")
_INDEXED = ("experiments", "models", "endpoints")


def upgrade() -> None:
    for table in _OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "workspace", sa.String(length=128), nullable=False, server_default="default"
                )
            )
            if table in _INDEXED:
                batch_op.create_index(f"ix_{table}_workspace", ["workspace"], unique=False)


def downgrade() -> None:
    for table in _OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in _INDEXED:
                batch_op.drop_index(f"ix_{table}_workspace")
            batch_op.drop_column("workspace")
