"""The audit trail's tables in the region's control database (:mod:`archive_audit`).

``audit_events`` is append-only: rows are only ever inserted, each carrying the HMAC of its
predecessor's hash and its own content (:mod:`archive_audit.chain`), so a changed, removed or
added row breaks the chain. Ids are given by the writer from ``audit_head`` (the last id plus one),
never by a sequence: consecutive ids make a removed row visible as a gap, and a rolled-back
PostgreSQL sequence would leave gaps without any tampering.

``audit_head`` is one row (id 1): the chain's last id and hash. Every writer locks it first, so
writers from several processes append one after the other to one chain.

``audit_door_log`` is where the door-log tailer stopped reading (file inode, byte offset) and the
view/download aggregates of windows not yet closed, written in the same transaction as the audit
rows made from those lines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import ControlBase
from .sqltypes import UTCDateTime, id_type, json_type

AUDIT_OUTCOMES = ("success", "failure", "denied")
AUDIT_ACTOR_KINDS = ("user", "api-key", "dicom", "system", "anonymous")
#: ``prev_hash`` of the first row: 64 zeros (there is no row before it).
GENESIS_HASH = "0" * 64


class AuditEventRow(ControlBase):
    """One audited event (see :class:`archive_audit.events.AuditEvent`)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="outcome"),
        CheckConstraint(
            "actor_kind IN ('user', 'api-key', 'dicom', 'system', 'anonymous')",
            name="actor_kind"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor", "actor"),
        Index("ix_audit_events_patient_id", "patient_id"),
        Index("ix_audit_events_study_uid", "study_uid"),
        Index("ix_audit_events_tenant_at", "tenant", "at"),
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(16))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    tenant: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(200))
    patient_name: Mapped[str | None] = mapped_column(String(400))
    study_uid: Mapped[str | None] = mapped_column(String(128))
    resource: Mapped[str | None] = mapped_column(Text)
    session: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(ControlBase):
    """The chain's head: the last row's id and hash (0 and :data:`GENESIS_HASH` when empty)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditDoorLogRow(ControlBase):
    """How far the door's access log was turned into audit rows, and the open windows."""

    __tablename__ = "audit_door_log"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
