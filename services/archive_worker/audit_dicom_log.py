"""``audit.dicom-log``: turn what is new in Orthanc's log into DIMSE audit rows.

One run reads Orthanc's log (``Archive.Dicom.Audit.OrthancLog``, else
``$ARCHIVE_DATA/logs/orthanc.log``, else ``<StateDirectory>/logs/orthanc.log``) from the offset
stored in the control database and records the 5-minute aggregates of DIMSE requests that are
complete (:mod:`archive_audit.dicom_tail`). What a C-MOVE or C-GET sent is resolved in Orthanc
(``GET /studies/{id}``, else the series, instance or patient of that id) once per resource.

Params: ``{}`` for one run; ``{"every": seconds}`` to run periodically (each run enqueues the
next for the next multiple of ``every`` seconds, under the idempotency key
``audit.dicom-log:<every>:<slot>``; :func:`schedule` enqueues the first at worker start);
``{"flush": true}`` also settles every open request and closes every open window at the end of
the run (the rest of a window then comes as a second row). Result: ``{"lines", "facts",
"requests", "events", "open", "pending", "at_end", "raced", "log", "next_job"}``, and
``"log_missing": true`` when the log file does not exist (Orthanc writing elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from archive_api.orthanc import OrthancHttpError
from archive_audit.dicom_log import Resource, ResourceResolver
from archive_audit.dicom_tail import DicomLogTailer
from archive_config.settings import ArchiveSettings
from archive_state.jobs import Job, JobQueue

from . import audit_logs
from .context import Handler, JobContext, OrthancApi

KIND = "audit.dicom-log"
DESCRIPTION = ("Record the DIMSE requests in Orthanc's log in the audit trail (5-minute "
               "aggregates per calling AE, operation, study and outcome).")
LOG_FILE = "orthanc.log"
#: Orthanc's REST collections, in the order an id is looked for (C-MOVE/C-GET send studies
#: most often).
LEVELS = (("Study", "studies"), ("Series", "series"), ("Instance", "instances"),
          ("Patient", "patients"))


def orthanc_log_path(settings: ArchiveSettings, env: Mapping[str, str]) -> Path:
    if settings.dicom.audit.orthanc_log:
        return Path(settings.dicom.audit.orthanc_log)
    return audit_logs.logs_folder(settings, env) / LOG_FILE


def check_params(params: dict[str, Any]) -> str | None:
    """None when ``params`` suit this kind, else what is wrong (for the API's 422)."""
    return audit_logs.params_problem(params, flags=("flush",))


def _patient(tags: Mapping[str, Any]) -> tuple[str | None, str | None]:
    return tags.get("PatientID"), tags.get("PatientName")


def orthanc_resources(orthanc: OrthancApi) -> ResourceResolver:
    """The study, patient and instance count of an Orthanc id (None: Orthanc has no such
    resource any more)."""

    def resolve(orthanc_id: str) -> Resource | None:
        for level, collection in LEVELS:
            try:
                found = orthanc.get_json(f"/{collection}/{orthanc_id}")
                statistics = orthanc.get_json(f"/{collection}/{orthanc_id}/statistics")
            except OrthancHttpError as exc:
                if exc.status == 404:
                    continue
                raise
            count = statistics.get("CountInstances") if isinstance(statistics, dict) else None
            instances = count if isinstance(count, int) else None
            if level == "Patient":
                patient_id, name = _patient(found.get("MainDicomTags") or {})
                return Resource(level, None, patient_id, name, instances)
            study = found if level == "Study" else orthanc.get_json(
                f"/{collection}/{orthanc_id}/study")
            patient_id, name = _patient(study.get("PatientMainDicomTags") or {})
            uid = (study.get("MainDicomTags") or {}).get("StudyInstanceUID")
            return Resource(level, uid, patient_id, name, instances)
        return None

    return resolve


def schedule(queue: JobQueue, every: float, now: datetime | None = None) -> Job:
    """Enqueue the run for the next multiple of ``every`` seconds (idempotent per slot)."""
    return audit_logs.schedule(queue, KIND, every, now)


def tail(job: Job, context: JobContext) -> dict[str, Any]:
    settings = audit_logs.settings_for(job, context, check_params)
    path = orthanc_log_path(settings, dict(os.environ))
    with audit_logs.audit_trail(settings) as audit:
        tailer = DicomLogTailer(audit, path, settings.tenant,
                                resolve=orthanc_resources(context.orthanc),
                                name=f"{settings.tenant}:dicom-audit")
        context.progress(0, None, "reading Orthanc's log")
        report = tailer.run(flush=bool(job.params.get("flush", False)))
    result = report.to_json()
    result["log"] = str(path)
    if not path.exists():  # under systemd Orthanc logs to the journal (docs/configuration.md)
        result["log_missing"] = True
    next_job = audit_logs.schedule_next(job, settings)
    if next_job is not None:
        result["next_job"] = next_job
    context.progress(1, 1, f"{report.events} audit row(s) from {report.requests} request(s)")
    return result


KINDS: Mapping[str, Handler] = {KIND: tail}

__all__ = ["DESCRIPTION", "KIND", "KINDS", "check_params", "orthanc_log_path",
           "orthanc_resources", "schedule", "tail"]
