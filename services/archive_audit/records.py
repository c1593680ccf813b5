"""A stored audit row as the rest of the code sees it, and how an event becomes one.

The values are normalised once, before they are hashed and stored, so what is read back is
exactly what was hashed on every database: NUL characters (PostgreSQL text cannot hold them)
become U+FFFD, text is cut to the column's length, ``detail`` is made plain JSON, the time is
aware UTC with microseconds (what both databases keep).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Row

from .events import AuditEvent

#: The longest value each text column keeps (the models' lengths; ``resource`` is free text).
LIMITS: Mapping[str, int] = {
    "action": 32, "outcome": 16, "actor": 200, "actor_kind": 16, "source_ip": 64, "tenant": 32,
    "unit": 64, "patient_id": 200, "patient_name": 400, "study_uid": 128, "resource": 4000,
    "session": 64,
}
#: Every column of ``audit_events`` but ``hash``, in the order shown to people.
FIELDS = ("id", "at", "action", "outcome", "actor", "actor_kind", "source_ip", "tenant", "unit",
          "patient_id", "patient_name", "study_uid", "resource", "session", "detail",
          "prev_hash")


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit trail, detached from the database."""

    id: int
    at: datetime
    action: str
    outcome: str
    actor: str
    actor_kind: str
    source_ip: str | None
    tenant: str | None
    unit: str | None
    patient_id: str | None
    patient_name: str | None
    study_uid: str | None
    resource: str | None
    session: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def _text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    clean = str(value).replace("\x00", "\ufffd")
    return clean[:LIMITS[name]]


def plain_json(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` as it reads back from a JSON column (anything else JSON lacks as text)."""
    text = json.dumps(dict(detail), ensure_ascii=False, allow_nan=False, default=str)
    value = json.loads(text.replace("\\u0000", "\\ufffd"))
    if not isinstance(value, dict):
        raise ValueError("an audit event's detail must be a JSON object")
    return value


def utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: audit times are UTC")
    return at.astimezone(timezone.utc)


def values_of(event: AuditEvent, row_id: int, at: datetime) -> dict[str, Any]:
    """The row's columns but ``prev_hash`` and ``hash``, normalised (see the module)."""
    return {
        "id": row_id, "at": utc(event.at or at),
        "action": _text("action", event.action), "outcome": _text("outcome", event.outcome),
        "actor": _text("actor", event.actor) or "", "actor_kind": _text("actor_kind",
                                                                      event.actor_kind),
        "source_ip": _text("source_ip", event.source_ip), "tenant": _text("tenant", event.tenant),
        "unit": _text("unit", event.unit), "patient_id": _text("patient_id", event.patient_id),
        "patient_name": _text("patient_name", event.patient_name),
        "study_uid": _text("study_uid", event.study_uid),
        "resource": _text("resource", event.resource), "session": _text("session", event.session),
        "detail": plain_json(event.detail),
    }


def record_of(row: Row[Any]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(**{name: m[name] for name in (*FIELDS, "hash")})


def canonical(values: Mapping[str, Any]) -> bytes:
    """The row as hashed: JSON with sorted keys, no spaces, UTF-8, the time as
    ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``. ``hash`` itself is never part of it."""
    document = {name: values[name] for name in FIELDS}
    document["at"] = utc(values["at"]).isoformat(timespec="microseconds")
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def as_values(record: AuditRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in (*FIELDS, "hash")}
