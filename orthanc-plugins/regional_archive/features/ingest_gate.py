"""The ingest gate: every instance, by every way in, is checked before Orthanc indexes it.

The checks are :mod:`archive_gate`'s (pure, header-sized work); this feature applies the verdict
on Orthanc's ingest path:

* **accept**: Orthanc indexes the bytes as received;
* **repair**: Orthanc indexes the repaired bytes (declared, lossless header edits); what was
  changed is recorded in ``<StateDirectory>/gate/repaired/<sha256 of the received bytes>.json``,
  where the STOW-RS service reads it to warn the client;
* **conflict**: an instance whose SOP Instance UID is already stored with other content
  (:func:`archive_gate.content.same_instance`) is quarantined too, with the reason
  ``conflicting-duplicate``: Orthanc would keep the first and silently drop it. The same
  content again is kept (Orthanc answers "AlreadyStored": stored once);
* **quarantine**: the bytes as received and the reasons go to the spool
  (:mod:`archive_state.quarantine_spool`, fsynced before the sender gets an answer), Orthanc
  never indexes them. A C-STORE is answered with the warning 0xB007 (kept, do not send it
  again); an upload is discarded and its client learns why from the STOW-RS service. If the
  spool cannot be written the sender is told "out of resources" (0xA700, or an HTTP error), so
  nothing is ever reported as kept that is not.

Runs on Orthanc's threads, once per instance: no database, no network; one read of Orthanc's
index (``LookupSeries`` once per series, ``LookupInstance`` only where the series existed or the
UID was seen before: :mod:`.new_series`; the stored file only when the UID is there), made
before Orthanc takes any lock for the new instance (docs/decisions.md, "The ingest gate").
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from archive_gate.content import same_instance
from archive_gate.verdict import Action, Reason, Verdict, tag_text
from archive_state import quarantine_spool

from ..contributions import Contribution, HealthCheck
from ..ingest import (KEEP, STATUS_OUT_OF_RESOURCES, STATUS_QUARANTINED, IngestDecision,
                      InstanceOrigin, ReceivedInstance, Sender)
from .new_series import NewSeries

log = logging.getLogger(__name__)

NAME = "ingest-gate"
REPAIRED_SUBFOLDER = Path("gate") / "repaired"

#: The quarantine's name for each way in. Our STOW-RS service posts to ``/instances``, so
#: "rest" is what it sends; it records "stow" and the client itself in the quarantine index.
TRANSPORTS: Mapping[InstanceOrigin, str] = {
    InstanceOrigin.DICOM_PROTOCOL: "dimse",
    InstanceOrigin.REST_API: "rest",
    InstanceOrigin.PLUGIN: "stow",
    InstanceOrigin.LUA: "unknown",
    InstanceOrigin.WEB_DAV: "unknown",
    InstanceOrigin.UNKNOWN: "unknown",
}

Inspector = Callable[[bytes], Verdict]
SpoolWriter = Callable[[Path, bytes, Mapping[str, Any]], str]
#: The stored file of a SOP Instance UID, or None (``SdkAdapter.stored_instance``).
StoredLookup = Callable[[str], bytes | None]
#: Whether Orthanc's index has a series of this Series Instance UID (``SdkAdapter.has_series``).
SeriesLookup = Callable[[str], bool]
SOP_INSTANCE_UID = 0x00080018
CONFLICT = "conflicting-duplicate"


def _nothing_stored(sop_instance_uid: str) -> bytes | None:
    return None


def _no_series(series_instance_uid: str) -> bool:
    return False


def reasons_json(verdict: Verdict) -> list[dict[str, Any]]:
    return [{"code": r.code, "tag": None if r.tag is None else tag_text(r.tag),
             "message": r.message} for r in verdict.reasons]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class IngestGateFeature:
    """Contributes the gate as the received-instance handler, and the spool check."""

    inspect: Inspector
    state_directory: Path
    tenant: str
    write_spool: SpoolWriter = quarantine_spool.write
    stored_instance: StoredLookup = _nothing_stored
    has_series: SeriesLookup = _no_series
    new_series: NewSeries = field(default_factory=NewSeries)
    name: str = NAME
    now: Callable[[], str] = field(default=_now)

    @property
    def spool(self) -> Path:
        return quarantine_spool.folder_of(self.state_directory)

    @property
    def repaired(self) -> Path:
        return self.state_directory / REPAIRED_SUBFOLDER

    def contribute(self) -> Contribution:
        check = HealthCheck(
            name="quarantine-writable",
            description="the quarantine spool folder can be written",
            probe=self.spool_problem,
        )
        return Contribution(on_received_instance=(self.handle,), health_checks=(check,))

    def spool_problem(self) -> str | None:
        try:
            self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create the quarantine folder {self.spool}: {exc}"
        if not os.access(self.spool, os.W_OK | os.X_OK):
            return f"the quarantine folder {self.spool} is not writable by Orthanc's user"
        return None

    def handle(self, instance: ReceivedInstance) -> IngestDecision:
        verdict = self.inspect(instance.data)
        if verdict.action is not Action.QUARANTINE:
            kept = verdict.repaired if verdict.action is Action.REPAIR else instance.data
            verdict = self._conflict(verdict, kept or instance.data)
        if verdict.action is Action.ACCEPT:
            return KEEP
        if verdict.action is Action.REPAIR and verdict.repaired is not None:
            self._record_repair(instance, verdict)
            return IngestDecision.replace(verdict.repaired, ", ".join(sorted(verdict.codes)))
        return IngestDecision.divert(partial(self._quarantine, instance, verdict),
                                     ", ".join(sorted(verdict.codes)) or "quarantined")

    def _conflict(self, verdict: Verdict, kept: bytes) -> Verdict:
        """``verdict`` turned into a quarantine when its UID is stored with other content."""
        uid, series = verdict.identity.sop_instance_uid, verdict.identity.series_instance_uid
        if not uid or (series and not self.new_series.must_look_up(series, uid,
                                                                    self.has_series)):
            return verdict
        stored = self.stored_instance(uid)
        if stored is None or same_instance(stored, kept):
            return verdict
        reason = Reason(CONFLICT, SOP_INSTANCE_UID,
                        f"an instance with SOP Instance UID {uid} is already stored with other "
                        "content; the archive keeps the first and holds this one for a person "
                        "to decide (replace, keep both under a new UID, or discard)")
        return replace(verdict, action=Action.QUARANTINE, reasons=(reason, *verdict.reasons),
                       repaired=None, repairs=())

    def _quarantine(self, instance: ReceivedInstance, verdict: Verdict, sender: Sender) -> int:
        who = verdict.identity
        meta: dict[str, Any] = {
            "received_at": self.now(), "tenant": self.tenant,
            "transport": TRANSPORTS.get(instance.origin, "unknown"),
            "remote": {} if sender.calling_aet is None else {"calling_aet": sender.calling_aet},
            "reasons": reasons_json(verdict),
            "sop_class_uid": who.sop_class_uid, "sop_instance_uid": who.sop_instance_uid,
            "study_instance_uid": who.study_instance_uid,
            "series_instance_uid": who.series_instance_uid, "patient_id": who.patient_id,
            "patient_name": who.patient_name, "transfer_syntax": who.transfer_syntax,
        }
        try:
            entry = self.write_spool(self.spool, instance.data, meta)
        except (OSError, ValueError) as exc:
            log.error("instance %s (%d bytes, %s) could NOT be quarantined, refused: %s: %s",
                      who.sop_instance_uid, len(instance.data), meta["transport"],
                      type(exc).__name__, exc)
            return STATUS_OUT_OF_RESOURCES
        log.warning("quarantined instance %s of patient %s from %s%s: %s (entry %s)",
                    who.sop_instance_uid, who.patient_id, meta["transport"],
                    f" {sender.calling_aet}" if sender.calling_aet else "",
                    "; ".join(str(r) for r in verdict.reasons), entry)
        return STATUS_QUARANTINED

    def _record_repair(self, instance: ReceivedInstance, verdict: Verdict) -> None:
        """Best effort: the repair itself is in the stored instance; the record tells clients."""
        received = quarantine_spool.entry_id(instance.data)
        assert verdict.repaired is not None
        document = {
            "received_at": self.now(), "transport": TRANSPORTS.get(instance.origin, "unknown"),
            "sop_instance_uid": verdict.identity.sop_instance_uid,
            "reasons": reasons_json(verdict),
            "repairs": [{"tag": tag_text(r.tag), "before": r.before, "after": r.after,
                         "why": r.why} for r in verdict.repairs],
            "repaired_sha256": quarantine_spool.entry_id(verdict.repaired),
        }
        try:
            text = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
            quarantine_spool.write_private_file(self.repaired, f"{received}.json", text)
        except OSError as exc:
            log.error("repair of %s not recorded: %s", verdict.identity.sop_instance_uid, exc)
        log.warning("repaired instance %s from %s: %s", verdict.identity.sop_instance_uid,
                    document["transport"], "; ".join(str(r) for r in verdict.reasons))
