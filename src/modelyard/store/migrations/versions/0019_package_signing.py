"""package signing: the platform's Ed25519 signing keys and the signatures of versions

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_ciphertext", sa.Text(), nullable=False),
        sa.Column("secret_key_id", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_signing_keys_name")),
    )
    op.create_table(
        "version_signatures",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("package_digest", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("signed_by", sa.String(length=250), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_signatures_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["signing_keys.key_id"],
            name=op.f("fk_version_signatures_key_id_signing_keys"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_signatures")),
    )


def downgrade() -> None:
    op.drop_table("version_signatures")
    op.drop_table("signing_keys")
