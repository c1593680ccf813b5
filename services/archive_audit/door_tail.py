"""Follow the door's access log into the audit trail, from a durable offset.

Each step reads the whole lines added since the stored position (the file's inode and the
offset after the last whole line; :func:`archive_worker.door_log.read_new`, which also reads the
rest of a rotated ``<name>.1`` and starts again at 0 after a truncation), counts them into the
open windows (:mod:`archive_audit.door_log`), and in **one** write transaction appends the rows
of the windows now closed and stores the new position with the windows still open. A tailer
killed at any point has recorded both or neither: nothing is counted twice or lost.

Patients are looked up (Orthanc, through the resolver passed in) once per study per tailer and
before the transaction, which then checks that the stored state is still the one read: when
another tailer moved it meanwhile, nothing is written and the step reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_audit import AuditDoorLogRow
from archive_worker.door_log import LogPosition, read_new

from .chain import AuditLog
from .door_log import Aggregate, Key, Patient, PatientResolver, aggregate, event_of, parse_line
from .door_log import split_closed
from .events import AuditEvent
from .lookups import cached

log = logging.getLogger(__name__)

__all__ = ["DoorLogTailer", "TailReport", "TailState", "cached"]

#: A window is closed this long after its end (lines come a little late: long requests).
GRACE = timedelta(seconds=60)
#: Open aggregates kept at most; beyond, the oldest close early.
MAX_PENDING = 5000
#: Chunks (of :data:`archive_worker.door_log.MAX_READ`) one :meth:`DoorLogTailer.run` reads.
MAX_CHUNKS = 8

_cursor = cast(Table, AuditDoorLogRow.__table__)


@dataclass(frozen=True)
class TailState:
    position: LogPosition | None
    pending: dict[Key, Aggregate]


@dataclass(frozen=True)
class TailReport:
    """What :meth:`DoorLogTailer.run` did."""

    lines: int = 0
    events: int = 0
    pending: int = 0
    #: The log had nothing more when the run ended.
    at_end: bool = True
    #: Another tailer moved the state while this one read: it stopped without writing.
    raced: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "events": self.events, "pending": self.pending,
                "at_end": self.at_end, "raced": self.raced}


def _pending_json(pending: Mapping[Key, Aggregate]) -> list[dict[str, Any]]:
    return [a.to_json() for a in sorted(pending.values(), key=lambda a: (a.key.window,
                                                                          a.first))]


@dataclass
class DoorLogTailer:
    """Turns ``path`` (the door's JSON access log) into audit rows (see the module)."""

    audit: AuditLog
    path: Path
    resolve: PatientResolver | None = None
    #: The state row's name: one per log (``<tenant>:door-audit``).
    name: str = "door-audit"
    clock: Clock = utc_now
    grace: timedelta = GRACE
    max_pending: int = MAX_PENDING
    _resolve: PatientResolver | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._resolve = cached(self.resolve) if self.resolve is not None else None

    def state(self) -> TailState:
        with read(self.audit.engine) as conn:
            row = conn.execute(select(_cursor).where(_cursor.c.name == self.name)).one_or_none()
        return self._state_of(row)

    @staticmethod
    def _state_of(row: Any) -> TailState:
        if row is None:
            return TailState(None, {})
        pending = [Aggregate.from_json(item) for item in row.pending or []]
        return TailState(LogPosition(int(row.inode), int(row.offset)),
                         {a.key: a for a in pending})

    def run(self, max_chunks: int = MAX_CHUNKS) -> TailReport:
        """Read until the log's end (at most ``max_chunks`` chunks) and flush closed windows."""
        total = TailReport()
        for _ in range(max_chunks):
            step = self.step()
            total = TailReport(total.lines + step.lines, total.events + step.events,
                               step.pending, step.at_end, step.raced)
            if step.at_end or step.raced:
                break
        return total

    def step(self) -> TailReport:
        """One chunk: read, count, and write rows + position + open windows together."""
        before = self.state()
        chunk = read_new(self.path, before.position)
        lines = [] if chunk is None else chunk.lines
        parsed = [p for p in map(parse_line, lines) if p is not None]
        counted = aggregate(parsed, before.pending)
        ready, rest = split_closed(counted, self.clock(), self.grace, self.max_pending)
        position = before.position if chunk is None else chunk.position
        at_end = True if chunk is None else chunk.at_end
        if position == before.position and not ready and not lines:
            return TailReport(0, 0, len(rest), at_end)
        events = [event_of(a, self._patient(a)) for a in ready]
        if not self._commit(before, position, rest, events):
            log.info("door log %s: another tailer moved on meanwhile", self.path)
            return TailReport(0, 0, len(before.pending), at_end, raced=True)
        if len(lines) != len(parsed):
            log.warning("door log %s: %d line(s) were not JSON request lines", self.path,
                        len(lines) - len(parsed))
        return TailReport(len(lines), len(events), len(rest), at_end)

    def _patient(self, item: Aggregate) -> Patient | None:
        uid = item.key.study_uid
        if uid is None or self._resolve is None:
            return None
        return self._resolve(uid)

    def _commit(self, before: TailState, position: LogPosition | None,
                rest: Mapping[Key, Aggregate], events: list[AuditEvent]) -> bool:
        if position is None:  # nothing was ever read and the log does not exist: flush only
            position = LogPosition(0, 0)
        values = {"inode": position.inode, "offset": position.offset,
                  "pending": _pending_json(rest), "updated_at": self.clock()}
        try:
            with write(self.audit.engine) as conn:
                row = conn.execute(select(_cursor).where(_cursor.c.name == self.name)
                                   .with_for_update()).one_or_none()
                if self._state_of(row) != before:
                    return False
                self.audit.append(conn, events)
                if row is None:
                    conn.execute(_cursor.insert().values(name=self.name, **values))
                else:
                    conn.execute(update(_cursor).where(_cursor.c.name == self.name)
                                 .values(**values))
        except IntegrityError:
            return False  # another tailer inserted the first state row at the same moment
        return True
