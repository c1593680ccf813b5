"""The crash guard's memory in the tenant's state database: how far the door's error log has been
read, and which instances were being served when Orthanc died.

The guard (:mod:`archive_worker.crash_guard`) reads new log lines from the cursor and hands what
it found to :meth:`CrashWatch.advance`, which moves the cursor and updates the instances' rows in
**one** transaction: a worker killed at any point either recorded both or neither, so a restart
neither reads a line twice nor misses one. Several workers may scan at once; the cursor row is
locked (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) and an ``advance`` from a
position another worker already moved past is refused, so each line is counted once.

How deaths are counted is the caller's (a pure function passed to :meth:`advance`); this module
only stores the result: for each instance the times of the deaths that still count, the total,
the last request seen, and the quarantine job once there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .clock import Clock, utc_now
from .db import read, write
from .models import CrashSuspectRow, DoorLogCursorRow

__all__ = ["CrashWatch", "LogCursor", "Suspect", "SuspectUpdate"]

_cursors = cast(Table, DoorLogCursorRow.__table__)
_suspects = cast(Table, CrashSuspectRow.__table__)


@dataclass(frozen=True)
class LogCursor:
    """How far one log was read: file (inode), offset after the last whole line handled, and
    when the Orthanc death seen last began (lines of one death may straddle two reads)."""

    inode: int
    offset: int
    death_at: datetime | None = None


@dataclass(frozen=True)
class Suspect:
    """An instance seen in flight at one or more Orthanc deaths."""

    sop_instance_uid: str
    #: The deaths that still count (oldest first), as the guard's policy keeps them.
    deaths: tuple[datetime, ...]
    #: Every death it was seen at, ever.
    death_count: int
    last_request: str
    first_seen_at: datetime
    last_seen_at: datetime
    #: The quarantine job enqueued for it, once it reached the threshold.
    job_id: int | None = None


#: ``{uid: the row as it is, or None} -> {uid: the row as it must be}``; runs inside the
#: transaction, so it must be pure and quick.
SuspectUpdate = Callable[[Mapping[str, Suspect | None]], Mapping[str, Suspect]]


def _suspect(row: Row[Any]) -> Suspect:
    m = row._mapping
    return Suspect(
        sop_instance_uid=m["sop_instance_uid"],
        deaths=tuple(sorted(datetime.fromisoformat(d) for d in m["deaths"])),
        death_count=m["death_count"], last_request=m["last_request"],
        first_seen_at=m["first_seen_at"], last_seen_at=m["last_seen_at"], job_id=m["job_id"])


def _values(suspect: Suspect) -> dict[str, Any]:
    return {"deaths": [d.isoformat() for d in suspect.deaths],
            "death_count": suspect.death_count, "last_request": suspect.last_request,
            "first_seen_at": suspect.first_seen_at, "last_seen_at": suspect.last_seen_at,
            "job_id": suspect.job_id}


class CrashWatch:
    """The door-log cursors and crash suspects of one tenant."""

    def __init__(self, engine: Engine, tenant: str, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self.tenant = tenant
        self._clock = clock

    def cursor(self, log: str) -> LogCursor | None:
        """Where reading ``log`` stopped; None when it was never read."""
        with read(self._engine) as conn:
            row = conn.execute(select(_cursors).where(
                _cursors.c.tenant == self.tenant, _cursors.c.log == log)).one_or_none()
        return None if row is None else LogCursor(row.inode, row.offset, row.death_at)

    def advance(self, log: str, expected: LogCursor | None, new: LogCursor,
                uids: Collection[str], change: SuspectUpdate) -> bool:
        """Move ``log``'s cursor from ``expected`` to ``new`` and store ``change`` applied to the
        rows of ``uids``, atomically. False (nothing written) when the cursor is no longer at
        ``expected``: another worker handled those lines."""
        now = self._clock()
        try:
            with write(self._engine) as conn:
                row = conn.execute(select(_cursors).where(
                    _cursors.c.tenant == self.tenant, _cursors.c.log == log)
                    .with_for_update()).one_or_none()
                current = None if row is None else LogCursor(row.inode, row.offset, row.death_at)
                if current != expected:
                    return False
                cursor_values = {"inode": new.inode, "offset": new.offset,
                                 "death_at": new.death_at, "updated_at": now}
                if row is None:
                    conn.execute(_cursors.insert().values(tenant=self.tenant, log=log,
                                                          **cursor_values))
                else:
                    conn.execute(update(_cursors).where(
                        _cursors.c.tenant == self.tenant, _cursors.c.log == log)
                        .values(**cursor_values))
                if not uids:
                    return True
                found = {r.sop_instance_uid: _suspect(r) for r in conn.execute(
                    select(_suspects).where(_suspects.c.tenant == self.tenant,
                                            _suspects.c.sop_instance_uid.in_(list(uids))))}
                before: dict[str, Suspect | None] = {uid: found.get(uid) for uid in uids}
                for uid, after in change(before).items():
                    if before.get(uid) is None:
                        conn.execute(_suspects.insert().values(
                            tenant=self.tenant, sop_instance_uid=uid, updated_at=now,
                            **_values(after)))
                    else:
                        conn.execute(update(_suspects).where(
                            _suspects.c.tenant == self.tenant,
                            _suspects.c.sop_instance_uid == uid)
                            .values(updated_at=now, **_values(after)))
        except IntegrityError:
            return False  # another worker inserted the first cursor row at the same moment
        return True

    def get(self, sop_instance_uid: str) -> Suspect | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_suspects).where(
                _suspects.c.tenant == self.tenant,
                _suspects.c.sop_instance_uid == sop_instance_uid)).one_or_none()
        return None if row is None else _suspect(row)

    def due(self, threshold: int) -> list[Suspect]:
        """Instances with at least ``threshold`` counting deaths and no quarantine job yet."""
        with read(self._engine) as conn:
            rows = conn.execute(select(_suspects).where(
                _suspects.c.tenant == self.tenant, _suspects.c.job_id.is_(None),
                _suspects.c.death_count >= threshold)
                .order_by(_suspects.c.last_seen_at)).all()
        return [s for s in map(_suspect, rows) if len(s.deaths) >= threshold]

    def assign_job(self, sop_instance_uid: str, job_id: int) -> None:
        """The instance's quarantine job is enqueued: record it (the row is no longer due; its
        deaths stay as the record of this round)."""
        with write(self._engine) as conn:
            conn.execute(update(_suspects).where(
                _suspects.c.tenant == self.tenant,
                _suspects.c.sop_instance_uid == sop_instance_uid)
                .values(job_id=job_id, updated_at=self._clock()))

    def count(self) -> int:
        with read(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(_suspects).where(
                _suspects.c.tenant == self.tenant)).scalar_one())
