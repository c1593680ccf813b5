"""The tables of both databases, as SQLAlchemy 2 typed declarative models.

The control database (one per region) and a tenant's state database have separate metadata,
so each has its own Alembic tree (``migrations/control``, ``migrations/state``) and either may be
a SQLite file or a PostgreSQL database. Code outside this package never sees these classes: the
queue, the outbox and the registry return frozen dataclasses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .sqltypes import UTCDateTime, id_type, json_type

# Deterministic constraint names, so later migrations can address them on both engines.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
QUARANTINE_STATUSES = ("held", "reingested", "discarded")


class StateBase(DeclarativeBase):
    """Tables of a tenant's state database."""

    metadata = MetaData(naming_convention=NAMING)


class ControlBase(DeclarativeBase):
    """Tables of the region's control database."""

    metadata = MetaData(naming_convention=NAMING)


class JobRow(StateBase):
    """One unit of background work and its whole life: queued → running → an end state."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key"),
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"
        ),
        Index("ix_jobs_claim", "tenant", "state", "run_after"),
        Index("ix_jobs_lease", "state", "lease_expires_at"),
        Index("ix_jobs_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(json_type())
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_expiries: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    progress_done: Mapped[int | None] = mapped_column(BigInteger)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    progress_message: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxRow(StateBase):
    """One change (a stored instance, a stable study, …) for consumers to act on.

    ``seq`` never goes back (SQLite AUTOINCREMENT, a PostgreSQL sequence), so a consumer's cursor
    is just the last ``seq`` it handled.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_tenant_seq", "tenant", "seq"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(32))
    change_type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxCursorRow(StateBase):
    """How far one consumer has got in one tenant's outbox, and who is consuming right now."""

    __tablename__ = "outbox_cursors"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuarantineRow(StateBase):
    """One entry of the quarantine spool (``archive_state.quarantine_spool``) and its fate.

    The spool's files are the truth about what was received; this row indexes their metadata
    and records what became of the entry (held → reingested or discarded, by whom, when).
    """

    __tablename__ = "quarantine"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'reingested', 'discarded')", name="status"),
        Index("ix_quarantine_list", "tenant", "status", "received_at"),
        Index("ix_quarantine_received_at", "tenant", "received_at"),
    )

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    transport: Mapped[str] = mapped_column(String(16))
    remote: Mapped[dict[str, Any]] = mapped_column(json_type())
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    size: Mapped[int] = mapped_column(BigInteger)
    sop_class_uid: Mapped[str | None] = mapped_column(Text)
    sop_instance_uid: Mapped[str | None] = mapped_column(Text)
    study_instance_uid: Mapped[str | None] = mapped_column(Text)
    series_instance_uid: Mapped[str | None] = mapped_column(Text)
    patient_id: Mapped[str | None] = mapped_column(Text)
    patient_name: Mapped[str | None] = mapped_column(Text)
    transfer_syntax: Mapped[str | None] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_by: Mapped[str | None] = mapped_column(String(200))
    reingested_as: Mapped[str | None] = mapped_column(String(64))
    last_attempt: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    history: Mapped[list[dict[str, Any]]] = mapped_column(json_type())
    files_missing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuarantineReasonRow(StateBase):
    """The reason codes of one quarantine entry, one row each (filters and counts per reason)."""

    __tablename__ = "quarantine_reasons"
    __table_args__ = (Index("ix_quarantine_reasons_code", "tenant", "code"),)

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(100), primary_key=True)


class DoorLogCursorRow(StateBase):
    """How far the crash guard has read the door's error log: the file (inode) and the offset
    after the last whole line handled, and when the Orthanc death it last saw began."""

    __tablename__ = "door_log_cursors"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    log: Mapped[str] = mapped_column(String(100), primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    death_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CrashSuspectRow(StateBase):
    """An instance that was being served when Orthanc died, and at which deaths.

    ``deaths`` holds the times of the recent deaths (those that still count for the policy);
    ``job_id`` is the quarantine job once the instance reached the threshold.
    """

    __tablename__ = "crash_suspects"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(255), primary_key=True)
    deaths: Mapped[list[str]] = mapped_column(json_type())
    death_count: Mapped[int] = mapped_column(Integer)
    last_request: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantRow(ControlBase):
    """A hospital of the region (decision 2: one tenant, one archive)."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceRow(ControlBase):
    """The last heartbeat of one process (``orthanc``, ``api``, ``worker-1`` …) on one host."""

    __tablename__ = "services"

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())


# The tables of later features live in modules of their own; importing them here registers them
# with the metadata above, which the migrations test compares against Alembic's trees.
from . import models_audit, models_modalities, models_security  # noqa: E402,F401
