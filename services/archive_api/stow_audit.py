"""The audit rows of one STOW-RS request, pure: one ``upload`` row per study and outcome.

The door's log does not count uploads (:mod:`archive_audit.door_log`); the API, which knows
what became of every part, records them here. A request's parts are grouped by their Study
Instance UID (None when it could not be read) and by whether they were stored: a stored group
is a ``success`` row, a failed one a ``failure`` row, each with ``detail`` = the number of
instances (``count``), those stored with a warning (``warned``) or the failure reasons
(``failureReasons``, hexadecimal DICOM status → count), and the quarantine entries that hold
refused parts. Who: the principal that sent the request (its name, kind and credential id);
the patient: as Orthanc indexed the study (looked up by the caller, for stored studies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archive_audit.door_log import Patient
from archive_audit.events import AuditEvent
from archive_auth.principal import Principal

from .stow_response import PartOutcome

__all__ = ["MAX_QUARANTINE_IDS", "stored_studies", "upload_events"]

#: Quarantine entries named in one row at most (a batch of broken files could hold thousands).
MAX_QUARANTINE_IDS = 50

_Group = tuple[str | None, bool]


def stored_studies(outcomes: Sequence[PartOutcome]) -> list[str]:
    """The studies that got at least one instance (whose patients the rows name)."""
    return sorted({o.study_instance_uid for o in outcomes
                   if o.stored and o.study_instance_uid is not None})


def _groups(outcomes: Sequence[PartOutcome]) -> dict[_Group, list[PartOutcome]]:
    groups: dict[_Group, list[PartOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.study_instance_uid, outcome.stored), []).append(outcome)
    return groups


def _detail(parts: Sequence[PartOutcome], stored: bool) -> dict[str, Any]:
    detail: dict[str, Any] = {"source": "stow-rs", "count": len(parts)}
    if stored:
        detail["warned"] = sum(1 for p in parts if p.warned)
        return detail
    reasons: dict[str, int] = {}
    for part in parts:
        code = f"{part.failure_reason:04X}" if part.failure_reason is not None else "?"
        reasons[code] = reasons.get(code, 0) + 1
    detail["failureReasons"] = reasons
    kept = [p.quarantine_id for p in parts if p.quarantine_id is not None]
    if kept:
        detail["quarantined"] = kept[:MAX_QUARANTINE_IDS]
    return detail


def upload_events(outcomes: Sequence[PartOutcome], principal: Principal | None, *,
                  tenant: str, client_ip: str | None, resource: str,
                  patients: Mapping[str, Patient | None]) -> list[AuditEvent]:
    """The rows of one request's ``outcomes``, ordered by study (stored before failed)."""
    actor = principal.name if principal is not None else "anonymous"
    kind = principal.actor_kind if principal is not None else "anonymous"
    session = principal.public_id if principal is not None else None
    events: list[AuditEvent] = []
    for (study, stored), parts in sorted(_groups(outcomes).items(),
                                         key=lambda item: (item[0][0] or "", not item[0][1])):
        patient = patients.get(study) if study is not None else None
        events.append(AuditEvent(
            action="upload", outcome="success" if stored else "failure", actor=actor,
            actor_kind=kind, source_ip=client_ip, tenant=tenant,
            patient_id=patient.patient_id if patient else None,
            patient_name=patient.patient_name if patient else None, study_uid=study,
            resource=resource, session=session, detail=_detail(parts, stored)))
    return events
