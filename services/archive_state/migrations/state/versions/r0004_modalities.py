"""State database: the tenant's known DICOM modalities.

Revision ID: state_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime

revision = "state_0004"
down_revision = "state_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modalities",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("allow_echo", sa.Boolean(), nullable=False),
        sa.Column("allow_store", sa.Boolean(), nullable=False),
        sa.Column("allow_find", sa.Boolean(), nullable=False),
        sa.Column("allow_get", sa.Boolean(), nullable=False),
        sa.Column("allow_move", sa.Boolean(), nullable=False),
        sa.Column("use_tls", sa.Boolean(), nullable=False),
        sa.Column("manufacturer", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "name", name="pk_modalities"),
    )
    op.create_index("ix_modalities_aet", "modalities", ["tenant", "ae_title"])


def downgrade() -> None:
    op.drop_index("ix_modalities_aet", table_name="modalities")
    op.drop_table("modalities")
