"""prediction log and labels in the metadata database (MODELYARD_PREDICTIONS=database)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("endpoint", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("scores", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("endpoint", "id", "model", "version", name=op.f("pk_predictions")),
    )
    op.create_index("ix_predictions_endpoint_ts", "predictions", ["endpoint", "ts"], unique=False)
    op.create_table(
        "prediction_labels",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=63), nullable=False),
        sa.Column("prediction_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("labelled_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_prediction_labels")),
    )
    op.create_index(
        "ix_prediction_labels_endpoint_prediction_id",
        "prediction_labels",
        ["endpoint", "prediction_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_labels_endpoint_prediction_id", table_name="prediction_labels")
    op.drop_table("prediction_labels")
    op.drop_index("ix_predictions_endpoint_ts", table_name="predictions")
    op.drop_table("predictions")
