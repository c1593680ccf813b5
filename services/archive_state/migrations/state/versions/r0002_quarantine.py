"""State database: the quarantine index (issue 7).

Revision ID: state_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime, json_type

revision = "state_0002"
down_revision = "state_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("remote", json_type(), nullable=False),
        sa.Column("reasons", json_type(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sop_class_uid", sa.Text(), nullable=True),
        sa.Column("sop_instance_uid", sa.Text(), nullable=True),
        sa.Column("study_instance_uid", sa.Text(), nullable=True),
        sa.Column("series_instance_uid", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.Text(), nullable=True),
        sa.Column("patient_name", sa.Text(), nullable=True),
        sa.Column("transfer_syntax", sa.Text(), nullable=True),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at", UTCDateTime(), nullable=False),
        sa.Column("status_by", sa.String(200), nullable=True),
        sa.Column("reingested_as", sa.String(64), nullable=True),
        sa.Column("last_attempt", json_type(), nullable=True),
        sa.Column("history", json_type(), nullable=False),
        sa.Column("files_missing_at", UTCDateTime(), nullable=True),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name="pk_quarantine"),
        sa.CheckConstraint("status IN ('held', 'reingested', 'discarded')",
                           name="ck_quarantine_status"),
    )
    op.create_index("ix_quarantine_list", "quarantine", ["tenant", "status", "received_at"])
    op.create_index("ix_quarantine_received_at", "quarantine", ["tenant", "received_at"])
    op.create_table(
        "quarantine_reasons",
        sa.Column("tenant", sa.String(32), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "entry_id", "code", name="pk_quarantine_reasons"),
    )
    op.create_index("ix_quarantine_reasons_code", "quarantine_reasons", ["tenant", "code"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_reasons_code", table_name="quarantine_reasons")
    op.drop_table("quarantine_reasons")
    op.drop_index("ix_quarantine_received_at", table_name="quarantine")
    op.drop_index("ix_quarantine_list", table_name="quarantine")
    op.drop_table("quarantine")
