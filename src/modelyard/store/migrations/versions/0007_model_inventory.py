"""model-risk inventory fields of registered models

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_inventory",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("risk_tier", sa.String(length=16), nullable=True),
        sa.Column("business_owner", sa.String(length=250), nullable=False),
        sa.Column("validator", sa.String(length=250), nullable=False),
        sa.Column("validation_status", sa.String(length=16), nullable=False),
        sa.Column("last_validated", sa.String(length=10), nullable=True),
        sa.Column("next_validation", sa.String(length=10), nullable=True),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_inventory_model_id_models")
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model_inventory")),
    )
    op.create_index(
        "ix_model_inventory_next_validation", "model_inventory", ["next_validation"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_model_inventory_next_validation", table_name="model_inventory")
    op.drop_table("model_inventory")
