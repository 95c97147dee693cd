"""package uploads: who staged each package upload, in which workspace, and its version

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 17:00:00

Versions already registered from an upload get their upload recorded as registered,
so its files take no more writes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "package_uploads",
        sa.Column("upload_id", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_package_uploads_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_package_uploads")),
    )
    op.execute(
        "INSERT INTO package_uploads (upload_id, workspace, created_by, created_at, version_id) "
        "SELECT substr(v.source, 9, 32), min(m.workspace), min(v.created_by), "
        "min(v.created_at), min(v.id) "
        "FROM model_versions v JOIN models m ON m.id = v.model_id "
        "WHERE v.source LIKE 'uploads/%' AND length(v.source) >= 40 "
        "GROUP BY substr(v.source, 9, 32)"
    )


def downgrade() -> None:
    op.drop_table("package_uploads")
