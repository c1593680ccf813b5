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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_audit.door_log import Patient, PatientResolver
from archive_audit.door_tail import DoorLogTailer
from archive_config.settings import ArchiveSettings, control_database_url, state_database_url
from archive_state.db import make_engine
from archive_state.jobs import Job, JobQueue

from .context import Handler, JobContext, JobFailed, OrthancApi

KIND = "audit.door-log"
DESCRIPTION = ("Record the door's view and download requests in the audit trail "
               "(5-minute aggregates per user, study and outcome).")
LOG_FILE = "door-audit.jsonl"
MIN_EVERY, MAX_EVERY = 10.0, 3600.0


def access_log_path(settings: ArchiveSettings, env: Mapping[str, str]) -> Path:
    data = env.get("ARCHIVE_DATA")
    folder = Path(data) / "logs" if data else Path(settings.state_directory) / "logs"
    return folder / LOG_FILE


def check_params(params: dict[str, Any]) -> str | None:
    """None when ``params`` suit this kind, else what is wrong (for the API's 422)."""
    unknown = set(params) - {"every"}
    if unknown:
        return f"unknown params: {', '.join(sorted(unknown))} (only 'every')"
    every = params.get("every")
    if "every" in params and (isinstance(every, bool) or not isinstance(every, (int, float))
                              or not MIN_EVERY <= every <= MAX_EVERY):
        return f"'every' must be a number of seconds from {MIN_EVERY:g} to {MAX_EVERY:g}"
    return None


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
    moment = now or datetime.now(timezone.utc)
    slot = int(moment.timestamp() // every) + 1
    run_after = datetime.fromtimestamp(slot * every, timezone.utc)
    return queue.enqueue(KIND, {"every": every}, idempotency_key=f"{KIND}:{every:g}:{slot}",
                         run_after=run_after)


def tail(job: Job, context: JobContext) -> dict[str, Any]:
    problem = check_params(job.params)
    if problem:
        raise JobFailed(f"bad params: {problem}")
    settings = context.settings
    if settings is None:
        raise JobFailed("this worker was started without the archive's settings")
    engine = make_engine(control_database_url(settings))
    try:
        audit = AuditLog(engine, load_or_create_key(key_path(settings.state_directory)))
        tailer = DoorLogTailer(audit, access_log_path(settings, dict(os.environ)),
                               resolve=orthanc_patients(context.orthanc),
                               name=f"{settings.tenant}:door-audit")
        context.progress(0, None, "reading the door's access log")
        report = tailer.run()
    finally:
        engine.dispose()
    result = report.to_json()
    every = job.params.get("every")
    if every is not None:
        state = make_engine(state_database_url(settings))
        try:
            queue = JobQueue(state, settings.tenant, settings.jobs)
            result["next_job"] = schedule(queue, float(every)).id
        finally:
            state.dispose()
    context.progress(1, 1, f"{report.events} audit row(s) from {report.lines} line(s)")
    return result


KINDS: Mapping[str, Handler] = {KIND: tail}

__all__ = ["DESCRIPTION", "KIND", "KINDS", "access_log_path", "check_params",
           "orthanc_patients", "schedule", "tail"]
