"""Control database: the audit trail (append-only, hash-chained), its head, the door-log tailer.

Revision ID: control_0003
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime, id_type, json_type

revision = "control_0003"
down_revision = "control_0002"
branch_labels = None
depends_on = None

#: Kept here, not imported: a migration must not change when the code does.
_GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", id_type(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("tenant", sa.String(32), nullable=True),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("patient_id", sa.String(200), nullable=True),
        sa.Column("patient_name", sa.String(400), nullable=True),
        sa.Column("study_uid", sa.String(128), nullable=True),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("session", sa.String(64), nullable=True),
        sa.Column("detail", json_type(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'denied')",
                           name="ck_audit_events_outcome"),
        sa.CheckConstraint("actor_kind IN ('user', 'api-key', 'dicom', 'system', 'anonymous')",
                           name="ck_audit_events_actor_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_index("ix_audit_events_patient_id", "audit_events", ["patient_id"])
    op.create_index("ix_audit_events_study_uid", "audit_events", ["study_uid"])
    op.create_index("ix_audit_events_tenant_at", "audit_events", ["tenant", "at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_one_row"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": _GENESIS_HASH,
                           "updated_at": datetime.now(timezone.utc)}])
    op.create_table(
        "audit_door_log",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("pending", json_type(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_audit_door_log"),
    )


def downgrade() -> None:
    op.drop_table("audit_door_log")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_tenant_at", table_name="audit_events")
    op.drop_index("ix_audit_events_study_uid", table_name="audit_events")
    op.drop_index("ix_audit_events_patient_id", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
