"""State database: the crash guard's door-log cursor and the instances seen at Orthanc deaths.

Revision ID: state_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime, json_type

revision = "state_0003"
down_revision = "state_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "door_log_cursors",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("log", sa.String(100), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("death_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "log", name="pk_door_log_cursors"),
    )
    op.create_table(
        "crash_suspects",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("sop_instance_uid", sa.String(255), nullable=False),
        sa.Column("deaths", json_type(), nullable=False),
        sa.Column("death_count", sa.Integer(), nullable=False),
        sa.Column("last_request", sa.Text(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "sop_instance_uid", name="pk_crash_suspects"),
    )


def downgrade() -> None:
    op.drop_table("crash_suspects")
    op.drop_table("door_log_cursors")
