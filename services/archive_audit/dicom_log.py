"""Settled DIMSE requests (:mod:`archive_audit.dicom_requests`) → audit rows, aggregated. Pure.

One row per (calling AE, its address, called AE, operation, outcome, C-MOVE destination, what
was retrieved) and 5-minute window (aligned to the clock, as the door log's), with ``detail``
= count, first and last time. So 500 images one modality stores within a window are one
``dicom-store`` row with count 500, and a C-MOVE of two studies is one ``dicom-move`` row per
study.

- **Actions.** ``dicom-echo``, ``dicom-store``, ``dicom-find`` (a worklist query too, with
  ``detail.worklist``), ``dicom-get``, ``dicom-move``, and ``dicom-refused`` for whatever was
  refused: an association (``detail.operation`` ``A-ASSOCIATE``, ``detail.reason``
  ``unknown-ae`` or ``called-ae``) or one request (its operation, ``not-allowed``). Storage
  commitment (N-ACTION, N-EVENT-REPORT) is not counted.
- **Outcome.** ``denied`` for a refusal; ``failure`` for a C-MOVE to an unknown destination or a
  C-MOVE/C-GET that Orthanc's handler failed (``detail.reason``); else ``success``: the request
  was accepted. What became of each image (stored, or quarantined by the ingest gate with a
  warning to the sender) is not in Orthanc's log; the quarantine has its own records.
- **Study and patient** are known for C-MOVE and C-GET: the Orthanc resource sent is resolved
  (through the resolver passed in) to its study and patient, with the number of its instances
  (``detail.instances``). For C-STORE, C-FIND and C-ECHO Orthanc's log names none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from .dicom_requests import DimseRequest
from .door_log import WINDOW, window_of
from .events import Action, AuditEvent, Outcome

__all__ = ["Aggregate", "Key", "Resource", "ResourceResolver", "aggregate", "event_of",
           "split_closed"]

#: Orthanc's request type → (DIMSE operation, action). Types not listed are not counted.
OPERATIONS: Mapping[str, tuple[str, Action]] = {
    "Echo": ("C-ECHO", "dicom-echo"), "Store": ("C-STORE", "dicom-store"),
    "Find": ("C-FIND", "dicom-find"), "FindWorklist": ("C-FIND", "dicom-find"),
    "Get": ("C-GET", "dicom-get"), "Move": ("C-MOVE", "dicom-move"),
    "Associate": ("A-ASSOCIATE", "dicom-refused"),
}
#: Modality Worklist Information Model - FIND (PS3.4 K.6.1.2): what a worklist query asks.
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


@dataclass(frozen=True)
class Resource:
    """What Orthanc's index says of a resource a C-MOVE or C-GET sent."""

    level: str
    study_uid: str | None
    patient_id: str | None
    patient_name: str | None
    instances: int | None = None


#: Orthanc id → the resource (None: Orthanc has no such resource any more).
ResourceResolver = Callable[[str], Resource | None]


@dataclass(frozen=True)
class Key:
    window: datetime
    request: str
    outcome: str
    aet: str
    ip: str | None
    called: str | None
    destination: str | None
    resource: str | None
    reason: str | None


@dataclass(frozen=True)
class Aggregate:
    key: Key
    count: int
    first: datetime
    last: datetime

    def add(self, at: datetime) -> "Aggregate":
        return replace(self, count=self.count + 1, first=min(self.first, at),
                       last=max(self.last, at))

    @property
    def closes_at(self) -> datetime:
        return self.key.window + WINDOW

    def to_json(self) -> dict[str, Any]:
        k = self.key
        return {"window": k.window.isoformat(), "request": k.request, "outcome": k.outcome,
                "aet": k.aet, "ip": k.ip, "called": k.called, "destination": k.destination,
                "resource": k.resource, "reason": k.reason, "count": self.count,
                "first": self.first.isoformat(), "last": self.last.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Aggregate":
        key = Key(datetime.fromisoformat(data["window"]), str(data["request"]),
                  str(data["outcome"]), str(data["aet"]), data.get("ip"), data.get("called"),
                  data.get("destination"), data.get("resource"), data.get("reason"))
        return cls(key, int(data["count"]), datetime.fromisoformat(data["first"]),
                   datetime.fromisoformat(data["last"]))


def keys_of(request: DimseRequest) -> list[Key]:
    """The keys one request counts under: one per resource it sent (at least one)."""
    if request.request not in OPERATIONS:
        return []
    window = window_of(request.at)
    return [Key(window, request.request, request.outcome, request.aet, request.ip,
                request.called, request.destination, resource, request.reason)
            for resource in (request.resources or (None,))]


def aggregate(requests: Iterable[DimseRequest],
              pending: Mapping[Key, Aggregate] | None = None) -> dict[Key, Aggregate]:
    """``pending`` with ``requests`` counted in (a new mapping)."""
    out = dict(pending or {})
    for request in requests:
        for key in keys_of(request):
            current = out.get(key)
            out[key] = (Aggregate(key, 1, request.at, request.at) if current is None
                        else current.add(request.at))
    return out


def split_closed(pending: Mapping[Key, Aggregate], now: datetime, grace: timedelta,
                 keep_at_most: int) -> tuple[list[Aggregate], dict[Key, Aggregate]]:
    """The aggregates whose window ended ``grace`` before ``now`` (oldest first) and the rest;
    beyond ``keep_at_most`` open ones the oldest close early."""
    ordered = sorted(pending.values(), key=lambda a: (a.key.window, a.first))
    ready = [a for a in ordered if a.closes_at + grace <= now]
    rest = [a for a in ordered if a.closes_at + grace > now]
    if len(rest) > keep_at_most:
        cut = len(rest) - keep_at_most
        ready, rest = ready + rest[:cut], rest[cut:]
    return ready, {a.key: a for a in rest}


def _outcome(text: str) -> Outcome:
    return "denied" if text == "denied" else "failure" if text == "failure" else "success"


def event_of(item: Aggregate, resource: Resource | None, tenant: str | None) -> AuditEvent:
    """The audit row for one closed aggregate; ``resource`` is its resolved resource."""
    k = item.key
    operation, action = OPERATIONS[k.request]
    outcome = _outcome(k.outcome)
    if outcome == "denied":
        action = "dicom-refused"
    detail: dict[str, Any] = {
        "source": "orthanc-log", "operation": operation, "count": item.count,
        "called_aet": k.called, "first": item.first.isoformat(), "last": item.last.isoformat(),
        "window": k.window.isoformat()}
    if k.request == "FindWorklist":
        detail.update(worklist=True, sop_class_uid=WORKLIST_FIND)
    if k.destination is not None:
        detail["destination_aet"] = k.destination
    if k.reason is not None:
        detail["reason"] = k.reason
    text: str | None = None
    if k.resource is not None:
        detail["orthanc_id"] = k.resource
        if resource is None:
            detail["resource_unresolved"] = True
            text = f"orthanc/{k.resource}"
        else:
            detail["level"] = resource.level
            if resource.instances is not None:
                detail["instances"] = resource.instances
            text = f"orthanc/{resource.level.lower()}/{k.resource}"
    return AuditEvent(
        action=action, outcome=outcome, actor=k.aet, actor_kind="dicom", source_ip=k.ip,
        tenant=tenant, patient_id=resource.patient_id if resource else None,
        patient_name=resource.patient_name if resource else None,
        study_uid=resource.study_uid if resource else None, resource=text, detail=detail,
        at=item.first.astimezone(timezone.utc))
