"""batch scoring jobs: who scored which version over which input into which output

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=250), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("input_uri", sa.Text(), nullable=False),
        sa.Column("output_uri", sa.Text(), nullable=False),
        sa.Column("output_format", sa.String(length=16), nullable=False),
        sa.Column("keep", sa.JSON(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("log_to", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("rows_in", sa.BigInteger(), nullable=True),
        sa.Column("rows_out", sa.BigInteger(), nullable=True),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("output_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("input_dataset_id", sa.String(length=32), nullable=True),
        sa.Column("output_dataset_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_batch_jobs_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["input_dataset_id"],
            ["datasets.id"],
            name=op.f("fk_batch_jobs_input_dataset_id_datasets"),
        ),
        sa.ForeignKeyConstraint(
            ["output_dataset_id"],
            ["datasets.id"],
            name=op.f("fk_batch_jobs_output_dataset_id_datasets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_jobs")),
    )
    op.create_index("ix_batch_jobs_workspace", "batch_jobs", ["workspace", "created_at"])
    op.create_index("ix_batch_jobs_version", "batch_jobs", ["model_id", "version"])
    op.create_index("ix_batch_jobs_input", "batch_jobs", ["input_dataset_id"])
    op.create_index("ix_batch_jobs_output", "batch_jobs", ["output_dataset_id"])


def downgrade() -> None:
    for index in ("output", "input", "version", "workspace"):
        op.drop_index(f"ix_batch_jobs_{index}", table_name="batch_jobs")
    op.drop_table("batch_jobs")
