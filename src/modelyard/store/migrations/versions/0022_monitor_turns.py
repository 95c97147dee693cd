"""monitor turns: when each monitor is next due, shared by every worker of the database

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no rows: a monitor without one is due, and the first worker to look takes its turn
    op.create_table(
        "monitor_turns",
        sa.Column("monitor_id", sa.Integer(), sa.ForeignKey("monitors.id"), primary_key=True),
        sa.Column("next_run", sa.BigInteger(), nullable=False),
        sa.Column("taken_by", sa.String(250), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitor_turns")
