"""``archive.crash-quarantine``: move an instance that kept killing Orthanc into the quarantine.

Enqueued by the crash guard (:mod:`.crash_guard`) once an instance was in flight at
``Archive.CrashGuard.DeathsToQuarantine`` Orthanc deaths. For each Orthanc instance with that SOP
Instance UID: download its file (``GET /instances/{id}/file``: the stored bytes, no decoding),
write it to the quarantine spool (reason ``decoder-crash``), and only then ``DELETE`` it from
Orthanc. Safe to run again after a kill at any step: the spool write is a no-op for bytes it
holds already (entries are named by their SHA-256), and an instance already deleted is simply
not found any more. The bytes then wait in the quarantine (``/api/quarantine``) to be fixed and
re-ingested through the gate, or discarded.

Params: ``{"sop_instance_uid": uid, "request": "GET …", "deaths": [ISO times]}``. Result:
``{"sop_instance_uid", "instances": [Orthanc ids], "quarantine": [entry ids], "patient_id"}``.
"""

from __future__ import annotations

from typing import Any

from archive_api.orthanc import OrthancHttpError
from archive_state import quarantine_spool
from archive_state.crash_watch import Suspect
from archive_state.jobs import Job

from .context import JobContext, JobFailed

KIND = "archive.crash-quarantine"
DESCRIPTION = ("Move an instance that was being served at repeated Orthanc crashes into the "
               "quarantine (download, spool, delete).")
REASON = "decoder-crash"
#: Orthanc's main tags → the spool's identifier fields.
_IDENTIFIERS = {"sop_class_uid": "SOPClassUID", "sop_instance_uid": "SOPInstanceUID",
                "study_instance_uid": "StudyInstanceUID",
                "series_instance_uid": "SeriesInstanceUID", "patient_id": "PatientID",
                "patient_name": "PatientName"}


def params_of(suspect: Suspect) -> dict[str, Any]:
    return {"sop_instance_uid": suspect.sop_instance_uid, "request": suspect.last_request,
            "deaths": [d.isoformat() for d in suspect.deaths]}


def check_params(params: dict[str, Any]) -> str | None:
    """None when ``params`` suit this kind, else what is wrong (for the API's 422)."""
    unknown = set(params) - {"sop_instance_uid", "request", "deaths"}
    if unknown:
        return f"unknown params: {', '.join(sorted(unknown))}"
    uid = params.get("sop_instance_uid")
    if not isinstance(uid, str) or not uid:
        return "'sop_instance_uid' must be a SOP Instance UID"
    if not isinstance(params.get("request", ""), str):
        return "'request' must be a string"
    deaths = params.get("deaths", [])
    if not isinstance(deaths, list) or not all(isinstance(d, str) for d in deaths):
        return "'deaths' must be a list of times"
    return None


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def reason_message(params: dict[str, Any]) -> str:
    deaths = [str(d) for d in params.get("deaths") or []]
    request = params.get("request") or "a request for this instance"
    when = f" (at {', '.join(deaths)})" if deaths else ""
    return (f"Orthanc stopped {_times(len(deaths) or 1)} while serving {request}{when}; the "
            "instance was taken out of the archive so that it cannot stop Orthanc again")


def instances_with(uid: str, context: JobContext) -> list[str]:
    """Orthanc ids of the instances with this SOP Instance UID (one per study it is in)."""
    found = context.orthanc.post_json("/tools/find", {
        "Level": "Instance", "Query": {"SOPInstanceUID": uid}, "Expand": True})
    return sorted(str(item["ID"]) for item in found or []
                  if item.get("MainDicomTags", {}).get("SOPInstanceUID") == uid)


def _identifiers(instance: str, context: JobContext) -> dict[str, Any]:
    tags = context.orthanc.get_json(f"/instances/{instance}/simplified-tags")
    meta = {key: tags.get(tag) for key, tag in _IDENTIFIERS.items()}
    try:
        meta["transfer_syntax"] = context.orthanc.request(
            "GET", f"/instances/{instance}/metadata/TransferSyntax").text or None
    except OrthancHttpError:
        meta["transfer_syntax"] = None
    return meta


def _delete(instance: str, context: JobContext) -> None:
    try:
        context.orthanc.request("DELETE", f"/instances/{instance}")
    except OrthancHttpError as exc:
        if exc.status != 404:
            raise


def quarantine(job: Job, context: JobContext) -> dict[str, Any]:
    problem = check_params(job.params)
    if problem:
        raise JobFailed(f"bad params: {problem}")
    if context.settings is None:
        raise JobFailed("this worker has no archive settings (state directory) to spool into")
    uid = str(job.params["sop_instance_uid"])
    folder = quarantine_spool.folder_of(context.settings.state_directory)
    instances = instances_with(uid, context)
    if not instances:
        context.log.info("instance %s is no longer in Orthanc: nothing to quarantine", uid)
    entries: list[str] = []
    patient: str | None = None
    total = 3 * len(instances)
    context.progress(0, total, "moving to quarantine")
    for n, instance in enumerate(instances):
        try:
            identifiers = _identifiers(instance, context)
            data = context.orthanc.request("GET", f"/instances/{instance}/file").content
        except OrthancHttpError as exc:
            if exc.status == 404:  # deleted meanwhile (by an earlier attempt or someone else)
                continue
            raise
        context.progress(3 * n + 1, total, f"{instance}: downloaded")
        patient = identifiers.get("patient_id")
        entry = quarantine_spool.write(folder, data, {
            "tenant": context.settings.tenant, "transport": "reingest", "remote": {},
            "reasons": [{"code": REASON, "tag": None, "message": reason_message(job.params)}],
            **identifiers, "parent": None})
        entries.append(entry)
        context.progress(3 * n + 2, total, f"{instance}: in quarantine {entry[:12]}")
        _delete(instance, context)
        context.log.warning(
            "instance %s (Orthanc %s, patient %s) moved to quarantine %s: Orthanc died %s "
            "while serving it", uid, instance, patient, entry,
            _times(len(job.params.get("deaths") or []) or 1))
        context.progress(3 * n + 3, total, f"{instance}: deleted from Orthanc")
    return {"sop_instance_uid": uid, "instances": instances, "quarantine": entries,
            "patient_id": patient}
