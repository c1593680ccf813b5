"""``archive.verify``: fixity check of stored files against the MD5 Orthanc recorded at reception.

Orthanc stores an MD5 of every attachment when it writes it, and
``POST /instances/{id}/attachments/dicom/verify-md5`` re-reads the stored file and compares
(200 when it matches, 400 when it does not). Run on a study when it becomes stable, it proves the
files reached the disk as received; run on the whole archive, it finds silent corruption.

Params: ``{"study": <Orthanc study id>}`` or ``{}`` for every instance. Result:
``{"checked": n, "failed": [instance ids]}``; any mismatch fails the job for good (a retry
would read the same bytes), with that result kept for the operator.
"""

from __future__ import annotations

from typing import Any

from archive_api.orthanc import OrthancHttpError
from archive_state.jobs import Job

from .context import JobContext, JobFailed

KIND = "archive.verify"
DESCRIPTION = "Check stored files against the MD5 Orthanc recorded at reception (a study or all)."


def check_params(params: dict[str, Any]) -> str | None:
    """None when ``params`` suit this kind, else what is wrong (for the API's 422)."""
    unknown = set(params) - {"study"}
    if unknown:
        return f"unknown params: {', '.join(sorted(unknown))} (only 'study')"
    study = params.get("study")
    if "study" in params and (not isinstance(study, str) or not study):
        return "'study' must be an Orthanc study id"
    return None


def instances_of(job: Job, context: JobContext) -> list[str]:
    study = job.params.get("study")
    if study is None:
        ids = context.orthanc.get_json("/instances")
    else:
        found = context.orthanc.get_json(f"/studies/{study}/instances")
        ids = [item["ID"] for item in found]
    return sorted(str(i) for i in ids)


def verify(job: Job, context: JobContext) -> dict[str, Any]:
    problem = check_params(job.params)
    if problem:
        raise JobFailed(f"bad params: {problem}")
    try:
        instances = instances_of(job, context)
    except OrthancHttpError as exc:
        if exc.status == 404:
            raise JobFailed(f"study {job.params.get('study')} does not exist") from None
        raise
    failed: list[str] = []
    total = len(instances)
    context.progress(0, total, "checking")
    for done, instance in enumerate(instances, start=1):
        try:
            context.orthanc.post_json(f"/instances/{instance}/attachments/dicom/verify-md5")
        except OrthancHttpError as exc:
            if exc.status == 400:
                context.log.error("instance %s: stored file does not match its MD5", instance)
                failed.append(instance)
            elif exc.status == 404:
                context.log.info("instance %s was deleted meanwhile", instance)
            else:
                raise
        context.progress(done, total, f"{len(failed)} mismatch(es)" if failed else None)
    result = {"checked": total, "failed": failed}
    if failed:
        raise JobFailed(f"{len(failed)} of {total} stored file(s) do not match their MD5", result)
    return result
