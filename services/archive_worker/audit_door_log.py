"""``audit.door-log``: turn what is new in the door's access log into audit rows.

One run reads the door's JSON access log (``$ARCHIVE_DATA/logs/door-audit.jsonl``, else
``<StateDirectory>/logs/door-audit.jsonl``) from the offset stored in the control database and
records the 5-minute view/download aggregates that are complete (:mod:`archive_audit.door_tail`).
Patients are looked up in Orthanc once per study (``POST /tools/find``).

Params: ``{}`` for one run, or ``{"every": seconds}`` to run periodically: at its end the job
enqueues its next run for the next multiple of ``every`` seconds, under the idempotency key
``audit.door-log:<every>:<slot>``, so two workers scheduling the same slot make one job.
:func:`schedule` enqueues the first one (at worker start). Result: ``{"lines", "events",
"pending", "at_end", "raced", "next_job"}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from archive_audit.door_log import Patient, PatientResolver
from archive_audit.door_tail import DoorLogTailer
from archive_config.settings import ArchiveSettings
from archive_state.jobs import Job, JobQueue

from . import audit_logs
from .context import Handler, JobContext, OrthancApi

KIND = "audit.door-log"
DESCRIPTION = ("Record the door's view and download requests in the audit trail "
               "(5-minute aggregates per user, study and outcome).")
LOG_FILE = "door-audit.jsonl"


def access_log_path(settings: ArchiveSettings, env: Mapping[str, str]) -> Path:
    return audit_logs.logs_folder(settings, env) / LOG_FILE


def check_params(params: dict[str, Any]) -> str | None:
    """None when ``params`` suit this kind, else what is wrong (for the API's 422)."""
    return audit_logs.params_problem(params)


def orthanc_patients(orthanc: OrthancApi) -> PatientResolver:
    """Patient id and name of a study, from Orthanc's index (None: Orthanc has no such study)."""

    def resolve(uid: str) -> Patient | None:
        found = orthanc.post_json("/tools/find", {
            "Level": "Study", "Query": {"StudyInstanceUID": uid}, "Expand": True})
        for item in found or []:
            tags = item.get("PatientMainDicomTags") or {}
            return Patient(tags.get("PatientID"), tags.get("PatientName"))
        return None

    return resolve


def schedule(queue: JobQueue, every: float, now: datetime | None = None) -> Job:
    """Enqueue the run for the next multiple of ``every`` seconds (idempotent per slot)."""
    return audit_logs.schedule(queue, KIND, every, now)


def tail(job: Job, context: JobContext) -> dict[str, Any]:
    settings = audit_logs.settings_for(job, context, check_params)
    with audit_logs.audit_trail(settings) as audit:
        tailer = DoorLogTailer(audit, access_log_path(settings, dict(os.environ)),
                               resolve=orthanc_patients(context.orthanc),
                               name=f"{settings.tenant}:door-audit")
        context.progress(0, None, "reading the door's access log")
        report = tailer.run()
    result = report.to_json()
    next_job = audit_logs.schedule_next(job, settings)
    if next_job is not None:
        result["next_job"] = next_job
    context.progress(1, 1, f"{report.events} audit row(s) from {report.lines} line(s)")
    return result


KINDS: Mapping[str, Handler] = {KIND: tail}

__all__ = ["DESCRIPTION", "KIND", "KINDS", "access_log_path", "check_params",
           "orthanc_patients", "schedule", "tail"]
