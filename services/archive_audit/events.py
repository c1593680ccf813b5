"""What one audit record says, and the one method every part that records calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Action = Literal[
    "login", "login-failed", "lockout", "logout", "view", "download", "upload", "share", "change",
    "delete", "restore", "purge", "config-change", "user-admin", "access-denied",
    "audit-read", "dicom-echo", "dicom-store", "dicom-find", "dicom-get", "dicom-move",
    "dicom-refused",
]
Outcome = Literal["success", "failure", "denied"]
ActorKind = Literal["user", "api-key", "dicom", "system", "anonymous"]


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened. ``at`` is filled in by the log when left ``None``."""

    action: Action
    outcome: Outcome
    actor: str
    actor_kind: ActorKind
    source_ip: str | None = None
    tenant: str | None = None
    unit: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    study_uid: str | None = None
    resource: str | None = None
    session: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None


class Recorder(Protocol):
    """Where events go: :class:`archive_audit.chain.AuditLog` in the services, a list in tests."""

    def record(self, event: AuditEvent) -> None: ...
