"""The quarantine index: the spool's entries as rows of the tenant's state database.

Orthanc's plugin writes refused instances to the spool (:mod:`archive_state.quarantine_spool`)
and nothing more; :meth:`QuarantineIndex.sync` (called by the API before every read and by the
worker every poll) brings the rows up to date:

- a new entry (.json in the spool, no row) becomes a row with status ``held``; concurrent
  importers insert it once (``ON CONFLICT DO NOTHING``);
- temp files of a crashed write are deleted, and a .dcm whose .json never came (a crash between
  the two renames) is *adopted*: its .json is written with the reason ``spool-metadata-lost``,
  so the bytes are never lost; both only after :data:`~archive_state.quarantine_spool.GRACE_SECONDS`;
- a row whose files (either of them) vanished is kept and marked (``files_missing_at``, logged as a warning), and
  unmarked if they come back;
- a discarded row whose files are still there (a crash after the row said discarded) has them
  deleted, unless the same bytes arrived again after the discard: then the entry is held again.

Status changes: ``held`` → ``reingested`` (Orthanc stored it, fixed or as received; its bytes stay
in the spool as the record of what was received) or ``discarded`` (the row is updated first, then
the files are deleted: the bytes are gone for good, the row stays as the record). Every change
keeps who and when (``status_by``, ``status_at``, ``history``).
"""

from __future__ import annotations

import builtins
import enum
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Row, Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from . import quarantine_spool as spool
from ._sql import upsert_insert
from .clock import Clock, utc_now
from .db import read, write
from .errors import QuarantineConflict, QuarantineNotFound
from .models import QuarantineReasonRow, QuarantineRow

__all__ = ["ImportReport", "QuarantineEntry", "QuarantineIndex", "QuarantineStatus"]

log = logging.getLogger(__name__)

_q = cast(Table, QuarantineRow.__table__)
_r = cast(Table, QuarantineReasonRow.__table__)
ORPHAN_REASON = "spool-metadata-lost"
#: A folder changed this recently may change again within its timestamp's granularity.
_SETTLE_SECONDS = 2.0


class QuarantineStatus(enum.StrEnum):
    HELD = "held"
    REINGESTED = "reingested"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class QuarantineEntry:
    """One indexed entry, detached from the database."""

    id: str
    tenant: str
    received_at: datetime
    transport: str
    remote: dict[str, Any]
    reasons: list[dict[str, Any]]
    size: int
    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    transfer_syntax: str | None
    parent: str | None
    status: QuarantineStatus
    status_at: datetime
    status_by: str | None
    reingested_as: str | None
    last_attempt: dict[str, Any] | None
    history: list[dict[str, Any]]
    files_missing_at: datetime | None
    imported_at: datetime

    @property
    def reason_codes(self) -> list[str]:
        return sorted({str(r.get("code")) for r in self.reasons})


@dataclass
class ImportReport:
    """What one :meth:`QuarantineIndex.sync` did (ids, sorted)."""

    imported: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    temp_files_removed: int = 0
    missing: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    discard_finished: list[str] = field(default_factory=list)
    held_again: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.imported, self.adopted, self.temp_files_removed, self.missing,
                    self.restored, self.discard_finished, self.held_again))


def _entry(row: Row[Any]) -> QuarantineEntry:
    m = row._mapping
    values = {name: m[name] for name in QuarantineEntry.__dataclass_fields__ if name != "status"}
    return QuarantineEntry(status=QuarantineStatus(m["status"]), **values)


def _parse_time(text: Any, fallback: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return fallback
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _event(status: str, at: datetime, by: str | None, **detail: Any) -> dict[str, Any]:
    return {"status": status, "at": at.isoformat(), "by": by, **detail}


class QuarantineIndex:
    """The quarantine of one tenant: its spool folder and its rows in the state database."""

    def __init__(self, engine: Engine, tenant: str, folder: Path, *, clock: Clock = utc_now,
                 grace_seconds: float = spool.GRACE_SECONDS) -> None:
        self._engine = engine
        self.tenant = tenant
        self.folder = folder
        self._clock = clock
        self._grace = grace_seconds
        self._settled_mtime: int | None = None

    # -- import ------------------------------------------------------------------------------

    def sync(self) -> ImportReport:
        """Bring the rows up to date with the spool (module docstring). Cheap when the folder
        has not changed since the last sync of this object that left nothing pending."""
        report = ImportReport()
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime is not None and mtime == self._settled_mtime:
            return report
        pending = self._clean(report)
        on_disk = set(spool.list_entries(self.folder))
        complete = on_disk & spool.data_ids(self.folder)  # metadata and bytes both there
        with read(self._engine) as conn:
            rows = {r.id: r for r in conn.execute(
                select(_q.c.id, _q.c.status, _q.c.status_at, _q.c.files_missing_at)
                .where(_q.c.tenant == self.tenant))}
        for entry in sorted(on_disk - rows.keys()):
            self._import(entry, report)
        for entry in sorted(on_disk - complete - rows.keys()):
            if entry in report.imported:  # metadata without bytes: flag it at once
                self._set_missing(entry, True)
                report.missing.append(entry)
        for entry, row in sorted(rows.items()):
            present = entry in complete
            if row.status == QuarantineStatus.DISCARDED:
                if entry in on_disk or spool.data_path(self.folder, entry).exists():
                    self._discarded_but_present(entry, row.status_at, report)
            elif not present and row.files_missing_at is None:
                self._set_missing(entry, True)
                report.missing.append(entry)
            elif present and row.files_missing_at is not None:
                self._set_missing(entry, False)
                report.restored.append(entry)
        for entry in report.missing:
            log.warning("quarantine entry %s: its files are gone from %s; the row is kept",
                        entry, self.folder)
        settled = (mtime is not None and not pending and not report.changed
                   and (self._clock().timestamp() - mtime / 1e9) > _SETTLE_SECONDS)
        self._settled_mtime = mtime if settled else None
        return report

    def _clean(self, report: ImportReport) -> bool:
        """Remove stale temp files, adopt stale orphans; True when younger ones wait."""
        now = self._clock().timestamp()
        for temp in spool.stale_temp_files(self.folder, grace=self._grace, now=now):
            temp.unlink(missing_ok=True)
            report.temp_files_removed += 1
        for entry in spool.orphans(self.folder, grace=self._grace, now=now):
            self._adopt(entry, report)
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return False
        on_disk = {n[:-5] for n in names if n.endswith(".json")}
        return any(n.endswith(".tmp") or (n.endswith(".dcm") and n[:-4] not in on_disk)
                   for n in names)

    def _adopt(self, entry: str, report: ImportReport) -> None:
        path = spool.data_path(self.folder, entry)
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if spool.entry_id(data) != entry:
            log.error("quarantine file %s does not hold the bytes its name says; left alone",
                      path)
            report.unreadable.append(entry)
            return
        with read(self._engine) as conn:
            row = conn.execute(select(_q.c.status, _q.c.status_at).where(
                _q.c.tenant == self.tenant, _q.c.id == entry)).first()
        arrived = datetime.fromtimestamp(mtime, timezone.utc)
        if row is not None and row.status == QuarantineStatus.DISCARDED and arrived <= row.status_at:
            spool.remove_entry(self.folder, entry)  # a discard that stopped half-way
            report.discard_finished.append(entry)
            return
        spool.write(self.folder, data, {
            "tenant": self.tenant, "transport": "unknown", "received_at": arrived.isoformat(),
            "reasons": [{"code": ORPHAN_REASON, "tag": None, "message":
                         "the metadata of this entry was not written (the process stopped "
                         "while quarantining it); the bytes are as received"}]})
        log.warning("quarantine entry %s: adopted bytes whose metadata was never written", entry)
        report.adopted.append(entry)

    def _import(self, entry: str, report: ImportReport) -> None:
        try:
            found = spool.read_entry(self.folder, entry)
        except (ValueError, OSError) as exc:
            log.error("quarantine entry %s cannot be read: %s", entry, exc)
            report.unreadable.append(entry)
            return
        if found is None:
            return
        now = self._clock()
        values = self._row_values(found.meta, now)
        values.update(status=QuarantineStatus.HELD.value, status_at=now, status_by=None,
                      reingested_as=None, last_attempt=None, files_missing_at=None,
                      imported_at=now,
                      history=[_event("held", now, None, received_at=found.meta.get("received_at"))])
        with write(self._engine) as conn:
            inserted = conn.execute(upsert_insert(conn, _q).values(**values)
                                    .on_conflict_do_nothing(index_elements=["tenant", "id"])
                                    .returning(_q.c.id)).first()
            if inserted is not None:
                self._insert_reasons(conn, entry, values["reasons"])
                report.imported.append(entry)

    def _row_values(self, meta: dict[str, Any], now: datetime) -> dict[str, Any]:
        reasons = [r for r in meta.get("reasons") or [] if isinstance(r, dict)]
        remote = meta.get("remote") if isinstance(meta.get("remote"), dict) else {}
        values: dict[str, Any] = {
            "tenant": self.tenant, "id": meta["id"],
            "received_at": _parse_time(meta.get("received_at"), now),
            "transport": str(meta.get("transport") or "unknown")[:16],
            "remote": remote, "reasons": reasons, "size": int(meta.get("size") or 0),
            "parent": meta.get("parent") if isinstance(meta.get("parent"), str) else None,
        }
        for key in spool.IDENTIFIERS:
            value = meta.get(key)
            values[key] = None if value is None else str(value)
        return values

    def _insert_reasons(self, conn: Connection, entry: str,
                        reasons: Sequence[dict[str, Any]]) -> None:
        codes = sorted({str(r.get("code"))[:100] for r in reasons}) or ["unspecified"]
        conn.execute(upsert_insert(conn, _r).values(
            [{"tenant": self.tenant, "entry_id": entry, "code": c} for c in codes])
            .on_conflict_do_nothing())

    def _set_missing(self, entry: str, missing: bool) -> None:
        with write(self._engine) as conn:
            conn.execute(update(_q).where(_q.c.tenant == self.tenant, _q.c.id == entry)
                         .values(files_missing_at=self._clock() if missing else None))

    def _discarded_but_present(self, entry: str, discarded_at: datetime,
                               report: ImportReport) -> None:
        try:
            found = spool.read_entry(self.folder, entry)
        except (ValueError, OSError):
            found = None
        arrived = (_parse_time(found.meta.get("received_at"), discarded_at)
                   if found is not None else discarded_at)
        if found is None or arrived <= discarded_at:
            spool.remove_entry(self.folder, entry)
            report.discard_finished.append(entry)
            return
        now = self._clock()
        values = self._row_values(found.meta, now)
        with write(self._engine) as conn:
            history: list[dict[str, Any]] = conn.execute(select(_q.c.history).where(
                _q.c.tenant == self.tenant, _q.c.id == entry)).scalar_one()
            values.update(status=QuarantineStatus.HELD.value, status_at=now, status_by=None,
                          reingested_as=None, files_missing_at=None,
                          history=[*history, _event("held", now, None, received_again=True)])
            conn.execute(update(_q).where(_q.c.tenant == self.tenant, _q.c.id == entry)
                         .values(**values))
            self._insert_reasons(conn, entry, values["reasons"])
        report.held_again.append(entry)

    # -- reading -----------------------------------------------------------------------------

    def _filters(self, *, status: QuarantineStatus | str | None, reason: str | None,
                 transport: str | None, patient: str | None, since: datetime | None,
                 until: datetime | None) -> list[Any]:
        where: list[Any] = [_q.c.tenant == self.tenant]
        if status is not None:
            where.append(_q.c.status == QuarantineStatus(status).value)
        if transport is not None:
            where.append(_q.c.transport == transport)
        if reason is not None:
            where.append(_q.c.id.in_(select(_r.c.entry_id).where(
                _r.c.tenant == self.tenant, _r.c.code == reason)))
        if patient:
            needle = patient.lower()
            where.append(or_(func.lower(_q.c.patient_id).contains(needle, autoescape=True),
                             func.lower(_q.c.patient_name).contains(needle, autoescape=True)))
        if since is not None:
            where.append(_q.c.received_at >= since)
        if until is not None:
            where.append(_q.c.received_at < until)
        return where

    def list(self, *, status: QuarantineStatus | str | None = None, reason: str | None = None,
             transport: str | None = None, patient: str | None = None,
             since: datetime | None = None, until: datetime | None = None, limit: int = 50,
             offset: int = 0) -> tuple[builtins.list[QuarantineEntry], int]:
        """Entries matching every filter given, newest first, and how many match in all.
        ``patient`` is a case-insensitive part of the patient id or name; ``until`` is
        exclusive."""
        where = self._filters(status=status, reason=reason, transport=transport,
                              patient=patient, since=since, until=until)
        with read(self._engine) as conn:
            total = conn.execute(select(func.count()).select_from(_q).where(*where)).scalar_one()
            rows = conn.execute(select(_q).where(*where)
                                .order_by(_q.c.received_at.desc(), _q.c.id)
                                .limit(limit).offset(offset)).all()
        return [_entry(r) for r in rows], int(total)

    def reason_counts(self, *, status: QuarantineStatus | str | None = None) -> dict[str, int]:
        """Entries per reason code (an entry with two codes counts under both)."""
        query = (select(_r.c.code, func.count()).select_from(
            _r.join(_q, and_(_q.c.tenant == _r.c.tenant, _q.c.id == _r.c.entry_id)))
            .where(_r.c.tenant == self.tenant).group_by(_r.c.code).order_by(_r.c.code))
        if status is not None:
            query = query.where(_q.c.status == QuarantineStatus(status).value)
        with read(self._engine) as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def get(self, entry: str) -> QuarantineEntry:
        if not spool.is_entry_id(entry):
            raise QuarantineNotFound(entry)
        with read(self._engine) as conn:
            row = conn.execute(select(_q).where(_q.c.tenant == self.tenant,
                                                _q.c.id == entry)).first()
        if row is None:
            raise QuarantineNotFound(entry)
        return _entry(row)

    def data(self, entry: str) -> bytes:
        """The bytes as received; :class:`QuarantineConflict` when they are gone."""
        current = self.get(entry)
        try:
            return spool.data_path(self.folder, entry).read_bytes()
        except FileNotFoundError:
            raise QuarantineConflict(
                f"quarantine entry {entry} has no bytes any more ({current.status.value})"
            ) from None

    # -- status changes ----------------------------------------------------------------------

    def _change(self, entry: str, allowed: Sequence[QuarantineStatus], values: dict[str, Any],
                event: dict[str, Any]) -> QuarantineEntry:
        with write(self._engine) as conn:
            row = conn.execute(select(_q.c.status, _q.c.history).where(
                _q.c.tenant == self.tenant, _q.c.id == entry)).first()
            if row is None:
                raise QuarantineNotFound(entry)
            if row.status not in allowed:
                raise QuarantineConflict(f"quarantine entry {entry} is {row.status}")
            conn.execute(update(_q).where(_q.c.tenant == self.tenant, _q.c.id == entry)
                         .values(history=[*row.history, event], **values))
        return self.get(entry)

    def record_attempt(self, entry: str, attempt: dict[str, Any], *, by: str | None) -> QuarantineEntry:
        """Keep the outcome of a re-ingest that did not store the instance (still held)."""
        now = self._clock()
        outcome = {**attempt, "at": now.isoformat(), "by": by}
        return self._change(entry, [QuarantineStatus.HELD], {"last_attempt": outcome},
                            _event("held", now, by, attempt=attempt))

    def mark_reingested(self, entry: str, orthanc_id: str, attempt: dict[str, Any], *,
                        by: str | None) -> QuarantineEntry:
        """Orthanc stored the entry (fixed or as received) as instance ``orthanc_id``."""
        now = self._clock()
        outcome = {**attempt, "at": now.isoformat(), "by": by}
        return self._change(entry, [QuarantineStatus.HELD], {
            "status": QuarantineStatus.REINGESTED.value, "status_at": now, "status_by": by,
            "reingested_as": orthanc_id, "last_attempt": outcome},
            _event("reingested", now, by, orthanc_id=orthanc_id, attempt=attempt))

    def link_parent(self, child: str, parent: str) -> None:
        """Record that entry ``child`` is a fixed re-ingest of ``parent`` (when the spool did
        not say so)."""
        with write(self._engine) as conn:
            conn.execute(update(_q).where(_q.c.tenant == self.tenant, _q.c.id == child,
                                          _q.c.parent.is_(None)).values(parent=parent))

    def set_origin(self, entry: str, transport: str, remote: dict[str, Any]) -> None:
        """Say how an entry really came in, when the writer could not know: the gate inside
        Orthanc sees every upload of the API service as ``rest``; the STOW-RS service knows it
        was STOW-RS and from which client. Only an entry still recorded as ``rest`` changes."""
        if transport not in spool.TRANSPORTS:
            raise ValueError(f"transport must be one of {spool.TRANSPORTS}: {transport!r}")
        with write(self._engine) as conn:
            conn.execute(update(_q).where(_q.c.tenant == self.tenant, _q.c.id == entry,
                                          _q.c.transport == "rest")
                         .values(transport=transport, remote=dict(remote)))

    def discard(self, entry: str, *, by: str | None) -> QuarantineEntry:
        """Discard an entry: the row says so first, then its files are deleted (for good).
        Discarding a discarded entry changes nothing."""
        current = self.get(entry)
        if current.status != QuarantineStatus.DISCARDED:
            now = self._clock()
            current = self._change(
                entry, [QuarantineStatus.HELD, QuarantineStatus.REINGESTED],
                {"status": QuarantineStatus.DISCARDED.value, "status_at": now, "status_by": by},
                _event("discarded", now, by))
        spool.remove_entry(self.folder, entry)
        return current


def report_text(report: ImportReport) -> str:
    """One line for a log."""
    return json.dumps({k: v for k, v in report.__dict__.items() if v}, sort_keys=True)
