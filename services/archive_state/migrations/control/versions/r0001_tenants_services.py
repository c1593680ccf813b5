"""Control database: the region's tenants and the service heartbeats.

Revision ID: control_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime, json_type

revision = "control_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )
    op.create_table(
        "services",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.Column("detail", json_type(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "name", "host", name="pk_services"),
    )


def downgrade() -> None:
    op.drop_table("services")
    op.drop_table("tenants")
