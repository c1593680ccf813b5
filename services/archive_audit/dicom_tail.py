"""Follow Orthanc's log into the audit trail's DIMSE rows, from a durable offset.

Each step reads the whole lines added since the stored position (inode and offset;
:func:`archive_worker.door_log.read_new`, which also reads the rest of a rotated
``orthanc.log.1`` and starts again at 0 after a truncation), picks out the DIMSE facts
(:mod:`archive_audit.orthanc_log`), completes the requests they belong to
(:mod:`archive_audit.dicom_requests`), counts the settled ones into the open windows
(:mod:`archive_audit.dicom_log`), and in **one** write transaction appends the rows of the
windows now closed and stores the new position with the requests and windows still open. A
tailer killed at any point has recorded both or neither: nothing is counted twice or lost.

The state lives in the control database's ``audit_door_log`` table (one row per followed log),
under the name ``<tenant>:dicom-audit``. Resources sent by C-MOVE/C-GET are resolved (Orthanc,
through the resolver passed in) once per tailer and before the transaction, which then checks
that the stored state is still the one read; when another tailer moved it meanwhile, nothing is
written and the step reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_audit import AuditDoorLogRow
from archive_worker.door_log import LogPosition, read_new

from .chain import AuditLog
from .dicom_log import (Aggregate, Key, Resource, ResourceResolver, aggregate, event_of,
                        split_closed)
from .dicom_requests import DimseRequest, Tracker
from .door_log import WINDOW
from .events import AuditEvent
from .lookups import cached
from .orthanc_log import read_fact

log = logging.getLogger(__name__)

__all__ = ["DicomLogTailer", "DicomTailReport", "DicomTailState", "cached"]

#: A window is closed this long after its end.
GRACE = timedelta(seconds=60)
MAX_PENDING = 5000
#: Chunks of 4 MiB one run reads at most (Orthanc writes about 320 bytes per stored image).
MAX_CHUNKS = 32
#: What "settle everything" compares with.
_FAR = datetime(9000, 1, 1, tzinfo=timezone.utc)

_cursor = cast(Table, AuditDoorLogRow.__table__)


@dataclass(frozen=True)
class DicomTailState:
    position: LogPosition | None
    open: tuple[DimseRequest, ...]
    pending: dict[Key, Aggregate]


@dataclass(frozen=True)
class DicomTailReport:
    lines: int = 0
    facts: int = 0
    requests: int = 0
    events: int = 0
    open: int = 0
    pending: int = 0
    at_end: bool = True
    raced: bool = False

    def plus(self, step: "DicomTailReport") -> "DicomTailReport":
        return DicomTailReport(self.lines + step.lines, self.facts + step.facts,
                               self.requests + step.requests, self.events + step.events,
                               step.open, step.pending, step.at_end, step.raced)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "facts": self.facts, "requests": self.requests,
                "events": self.events, "open": self.open, "pending": self.pending,
                "at_end": self.at_end, "raced": self.raced}


def _state_json(open_requests: Sequence[DimseRequest],
                pending: Mapping[Key, Aggregate]) -> list[dict[str, Any]]:
    items = [{"type": "request", **r.to_json()} for r in open_requests]
    items += [{"type": "aggregate", **a.to_json()}
              for a in sorted(pending.values(), key=lambda a: (a.key.window, a.first))]
    return items


@dataclass
class DicomLogTailer:
    """Turns ``path`` (Orthanc's log) into DIMSE audit rows (see the module)."""

    audit: AuditLog
    path: Path
    tenant: str | None
    resolve: ResourceResolver | None = None
    name: str = "dicom-audit"
    clock: Clock = utc_now
    grace: timedelta = GRACE
    max_pending: int = MAX_PENDING
    _resolve: ResourceResolver | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._resolve = cached(self.resolve) if self.resolve is not None else None

    def state(self) -> DicomTailState:
        with read(self.audit.engine) as conn:
            row = conn.execute(select(_cursor).where(_cursor.c.name == self.name)).one_or_none()
        return self._state_of(row)

    @staticmethod
    def _state_of(row: Any) -> DicomTailState:
        if row is None:
            return DicomTailState(None, (), {})
        items = list(row.pending or [])
        requests = tuple(DimseRequest.from_json(i) for i in items if i.get("type") == "request")
        pending = [Aggregate.from_json(i) for i in items if i.get("type") == "aggregate"]
        return DicomTailState(LogPosition(int(row.inode), int(row.offset)), requests,
                              {a.key: a for a in pending})

    def run(self, max_chunks: int = MAX_CHUNKS, *, flush: bool = False) -> DicomTailReport:
        """Read until the log's end (at most ``max_chunks`` chunks) and record closed windows;
        ``flush``: once at the end, settle every open request and close every window now."""
        total = DicomTailReport()
        for _ in range(max_chunks):
            step = self.step(flush=flush)
            total = total.plus(step)
            if step.at_end or step.raced:
                break
        return total

    def step(self, *, flush: bool = False) -> DicomTailReport:
        """One chunk: read, complete, count, and write rows + position + open state together."""
        before = self.state()
        chunk = read_new(self.path, before.position)
        lines = [] if chunk is None else chunk.lines
        at_end = True if chunk is None else chunk.at_end
        now = self.clock()
        facts = [f for f in (read_fact(line, now) for line in lines) if f is not None]
        tracker = Tracker(before.open)
        tracker.feed_all(facts)
        final = flush and at_end
        horizon = max([f.at for f in facts], default=datetime.min.replace(tzinfo=timezone.utc))
        if at_end:
            horizon = max(horizon, now)
        settled = tracker.settle(_FAR if final else horizon)
        counted = aggregate(settled, before.pending)
        closing = now + WINDOW + self.grace if final else now
        ready, rest = split_closed(counted, closing, self.grace, self.max_pending)
        position = before.position if chunk is None else chunk.position
        open_now = tuple(tracker.open)
        if (position == before.position and not ready and not lines
                and open_now == before.open and not settled):
            return DicomTailReport(0, 0, 0, 0, len(open_now), len(rest), at_end)
        events = [event_of(a, self._resource(a), self.tenant) for a in ready]
        if not self._commit(before, position, open_now, rest, events):
            log.info("orthanc log %s: another tailer moved on meanwhile", self.path)
            return DicomTailReport(0, 0, 0, 0, len(before.open), len(before.pending), at_end,
                                   raced=True)
        return DicomTailReport(len(lines), len(facts), len(settled), len(events), len(open_now),
                               len(rest), at_end)

    def _resource(self, item: Aggregate) -> Resource | None:
        orthanc_id = item.key.resource
        if orthanc_id is None or self._resolve is None:
            return None
        return self._resolve(orthanc_id)

    def _commit(self, before: DicomTailState, position: LogPosition | None,
                open_now: tuple[DimseRequest, ...], rest: Mapping[Key, Aggregate],
                events: list[AuditEvent]) -> bool:
        if position is None:  # the log never existed: only flush what was pending
            position = LogPosition(0, 0)
        values = {"inode": position.inode, "offset": position.offset,
                  "pending": _state_json(open_now, rest), "updated_at": self.clock()}
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
            return False
        return True
