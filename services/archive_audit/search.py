"""Finding audit rows: by time, operator, action, patient, unit, tenant, outcome and study;
newest first, paged.

- ``start`` is inclusive and ``end`` exclusive; both need a time zone (a naive time would be
  read in the server's zone, which is not the auditor's).
- ``operator`` is the actor's name, compared without regard to case (usernames are
  case-insensitive).
- ``patient`` is a piece of the patient id or of the patient name. Names are compared without
  DICOM's component separators and spaces, so ``王小明`` finds ``王^小明`` and ``wang xiaoming``
  finds ``WANG^XIAOMING``.
- ``unit`` is the org unit id recorded with the event (not its sub-units).
- ``tenants`` is not a search criterion but whose rows the reader may see at all: None for
  every row (``audit-read`` on the region), else only rows of those tenants (a hospital's
  auditor does not read another hospital's patients, nor the region's own rows, which have no
  tenant).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast, get_args

from sqlalchemy import ColumnElement, Table, and_, func, or_, select
from sqlalchemy.engine import Engine

from archive_state.db import read
from archive_state.models_audit import AuditEventRow

from .events import Action, Outcome
from .records import AuditRecord, record_of

__all__ = ["ACTIONS", "OUTCOMES", "AuditFilter", "AuditPage", "FilterError", "iterate",
           "search"]

ACTIONS: tuple[str, ...] = get_args(Action)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
MAX_LIMIT = 1000
#: The longest search text accepted for any filter.
MAX_TEXT = 200

_events = cast(Table, AuditEventRow.__table__)
_c = _events.c


class FilterError(ValueError):
    """A filter value that cannot be used; ``parameter`` names it (``from``, ``action`` …)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class AuditFilter:
    """What to look for; every criterion given must hold. Checked when made."""

    start: datetime | None = None
    end: datetime | None = None
    operator: str | None = None
    actions: tuple[str, ...] = ()
    patient: str | None = None
    unit: str | None = None
    tenant: str | None = None
    outcome: str | None = None
    study: str | None = None
    #: the tenants whose rows may be seen (None: every row); see the module docstring
    tenants: tuple[str, ...] | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        for name, moment in (("from", self.start), ("to", self.end)):
            if moment is not None and moment.tzinfo is None:
                raise FilterError(name, "需要时区 / needs a time zone, e.g. "
                                        "2026-12-01T08:00:00+08:00")
        if self.start and self.end and self.end <= self.start:
            raise FilterError("to", "须晚于 from / must be later than 'from'")
        unknown = [a for a in self.actions if a not in ACTIONS]
        if unknown:
            raise FilterError("action", f"未知操作 / unknown action {', '.join(unknown)} "
                                        f"(known: {', '.join(ACTIONS)})")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise FilterError("outcome", f"须为 / must be one of {', '.join(OUTCOMES)}")
        for name in ("operator", "patient", "unit", "tenant", "study"):
            text: str | None = getattr(self, name)
            if text is not None and (not text.strip() or len(text) > MAX_TEXT):
                raise FilterError(name, f"须为 1 至 {MAX_TEXT} 个字符 / must have 1 to "
                                        f"{MAX_TEXT} characters")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise FilterError("limit", f"须在 1 至 {MAX_LIMIT} 之间 / must be 1 to {MAX_LIMIT}")
        if self.offset < 0:
            raise FilterError("offset", "不能为负 / must not be negative")


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditRecord]
    total: int
    limit: int
    offset: int


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _squashed(value: Any) -> Any:
    """A name without DICOM's ``^`` component separators and spaces, in lower case."""
    return func.lower(func.replace(func.replace(value, "^", ""), " ", ""))


def _conditions(query: AuditFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.start is not None:
        where.append(_c.at >= query.start)
    if query.end is not None:
        where.append(_c.at < query.end)
    if query.operator is not None:
        where.append(func.lower(_c.actor) == query.operator.strip().lower())
    if query.actions:
        where.append(_c.action.in_(query.actions))
    if query.patient is not None:
        text = query.patient.strip()
        squashed = text.replace("^", "").replace(" ", "").lower()
        where.append(or_(func.lower(_c.patient_id).like(_like(text.lower()), escape="\\"),
                         _squashed(_c.patient_name).like(_like(squashed), escape="\\")))
    if query.tenants is not None:
        where.append(_c.tenant.in_(query.tenants))
    for column, value in ((_c.unit, query.unit), (_c.tenant, query.tenant),
                          (_c.outcome, query.outcome), (_c.study_uid, query.study)):
        if value is not None:
            where.append(column == value.strip())
    return where


def search(engine: Engine, query: AuditFilter) -> AuditPage:
    """One page of the rows ``query`` matches, newest first, and how many match in all."""
    where = _conditions(query)
    with read(engine) as conn:
        total = int(conn.execute(select(func.count()).select_from(_events)
                                 .where(*where)).scalar_one())
        rows = conn.execute(select(_events).where(*where)
                            .order_by(_c.at.desc(), _c.id.desc())
                            .limit(query.limit).offset(query.offset)).all()
    return AuditPage([record_of(r) for r in rows], total, query.limit, query.offset)


def iterate(engine: Engine, query: AuditFilter, *, batch: int = 500,
            maximum: int | None = None) -> Iterator[AuditRecord]:
    """Every row ``query`` matches (``limit``/``offset`` ignored), newest first, read in
    batches of its own short transactions. Paged by the last row seen, not by offset, so rows
    appended meanwhile neither repeat nor push others out."""
    where = _conditions(query)
    last: tuple[datetime, int] | None = None
    given = 0
    while maximum is None or given < maximum:
        keyset: Sequence[ColumnElement[bool]] = ()
        if last is not None:
            keyset = (or_(_c.at < last[0], and_(_c.at == last[0], _c.id < last[1])),)
        size = batch if maximum is None else min(batch, maximum - given)
        with read(engine) as conn:
            rows = conn.execute(select(_events).where(*where, *keyset)
                                .order_by(_c.at.desc(), _c.id.desc()).limit(size)).all()
        for row in rows:
            yield record_of(row)
        given += len(rows)
        if len(rows) < size:
            return
        record = record_of(rows[-1])
        last = (record.at, record.id)

