"""explanations: a logged prediction's stored explanation, a version's feature importance

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_explanations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("prediction_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_digest", sa.String(length=64), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("predicted_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_prediction_explanations_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_explanations")),
        sa.UniqueConstraint(
            "endpoint",
            "prediction_id",
            name=op.f("uq_prediction_explanations_endpoint_prediction_id"),
        ),
    )
    op.create_table(
        "version_importances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("importance", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_version_importances_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_importances")),
        sa.UniqueConstraint(
            "model_id", "version", name=op.f("uq_version_importances_model_id_version")
        ),
    )


def downgrade() -> None:
    op.drop_table("version_importances")
    op.drop_table("prediction_explanations")
