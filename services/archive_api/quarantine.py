"""``/api/quarantine``: what the ingest gate refused, to inspect, fix, re-ingest or discard.

Every read imports the spool first (:meth:`QuarantineIndex.sync`, cheap when nothing changed),
so an entry the plugin wrote a moment ago is listed. Re-ingesting (as received, or fixed with
:func:`archive_api.dicom_edit.apply_fix`) sends the bytes to Orthanc's ``POST /instances`` with
the internal credential, through the gate again: Orthanc's answer with an ``ID`` means stored
(the entry becomes ``reingested``); ``{}`` means the gate quarantined them again, under the id
of the bytes sent (for a fix, a new entry whose parent is this one), and the answer carries that
entry's reasons; an Orthanc error is recorded on the entry and answered 422 (refused) or 502.

Who did it: the entry's history names the principal; the audit trail gets a ``download`` for
the bytes, a ``change`` for a re-ingest or fix (with its result) and a ``delete`` for a discard,
each with the entry's patient and study.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from archive_auth.principal import Principal
from archive_state import quarantine_spool as spool
from archive_state.errors import QuarantineConflict
from archive_state.quarantine import QuarantineEntry, QuarantineIndex, QuarantineStatus

from . import dicom_edit
from .authz import Activity
from .errors import ApiError, BadRequest, Unprocessable
from .orthanc import AsyncOrthanc, OrthancHttpError
from .camel import CamelModel, StrictCamelModel

TRANSPORTS = Literal["dimse", "stow", "rest", "router", "reingest", "unknown"]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")




class Reason(CamelModel):
    code: str
    tag: str | None = None
    message: str = ""


def _reasons(raw: list[dict[str, Any]]) -> list[Reason]:
    return [Reason(code=str(r.get("code")), tag=r["tag"] if isinstance(r.get("tag"), str) else None,
                   message=str(r.get("message") or "")) for r in raw if isinstance(r, dict)]


class QuarantineOut(CamelModel):
    id: str
    tenant: str
    received_at: datetime
    transport: str
    remote: dict[str, Any]
    reasons: list[Reason]
    reason_codes: list[str]
    size: int
    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    transfer_syntax: str | None
    parent: str | None
    status: QuarantineStatus
    status_at: datetime
    status_by: str | None
    reingested_as: str | None
    last_attempt: dict[str, Any] | None
    history: list[dict[str, Any]]
    files_missing: bool
    files_missing_at: datetime | None

    @classmethod
    def of(cls, e: QuarantineEntry) -> "QuarantineOut":
        return cls(
            id=e.id, tenant=e.tenant, received_at=e.received_at, transport=e.transport,
            remote=e.remote, reasons=_reasons(e.reasons),
            reason_codes=e.reason_codes, size=e.size, sop_class_uid=e.sop_class_uid,
            sop_instance_uid=e.sop_instance_uid, study_instance_uid=e.study_instance_uid,
            series_instance_uid=e.series_instance_uid, patient_id=e.patient_id,
            patient_name=e.patient_name, transfer_syntax=e.transfer_syntax, parent=e.parent,
            status=e.status, status_at=e.status_at, status_by=e.status_by,
            reingested_as=e.reingested_as, last_attempt=e.last_attempt, history=e.history,
            files_missing=e.files_missing_at is not None, files_missing_at=e.files_missing_at)


class QuarantinePage(CamelModel):
    items: list[QuarantineOut]
    total: int
    limit: int
    offset: int
    reason_counts: dict[str, int] = Field(
        description="Entries per reason code among those of the status asked (all if none)")


class TagOut(CamelModel):
    tag: str
    keyword: str
    vr: str
    value: str
    error: str | None = None


class QuarantineDetail(QuarantineOut):
    tags: list[TagOut]
    tags_error: str | None = Field(description="Why reading the bytes stopped, if it did")


class TagEdit(CamelModel):
    model_config = ConfigDict(extra="forbid")

    vr: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    value: str = Field(max_length=10_000)


class FixRequest(StrictCamelModel):
    edits: dict[str, str | TagEdit] = Field(
        default_factory=dict, description='Tag → new value, e.g. {"(0010,0020)": "P-1"}, or '
        '{"vr": "US", "value": "512"} to set the VR too', max_length=200)
    remove: list[str] = Field(default_factory=list, description="Tags to remove",
                              max_length=200)


class ReingestOut(CamelModel):
    result: Literal["stored", "quarantined"]
    orthanc_id: str | None = None
    orthanc_status: str | None = None
    new_entry: str | None = Field(default=None, description="The entry the gate made again")
    reasons: list[Reason] = Field(default_factory=list)
    entry: QuarantineOut


class OrthancRefused(ApiError):
    status = 422


#: A FastAPI dependency factory: the permission → the dependency that authorizes it and
#: returns the principal (:meth:`archive_api.authz.Authz.require`).
Authorize = Callable[[str], Callable[..., Any]]


def router(index: QuarantineIndex, orthanc: AsyncOrthanc, authorize: Authorize,
           record: Activity | None = None) -> APIRouter:
    """Reading the list and an entry needs ``view``, its bytes ``download``, re-ingesting
    ``upload`` and discarding ``delete``; the principal's name is what the entry's history
    records as who did it, and ``record`` (when given) what the audit trail gets."""
    api = APIRouter(prefix="/api/quarantine", tags=["quarantine"])
    viewer, downloader = Depends(authorize("view")), Depends(authorize("download"))
    uploader, deleter = Depends(authorize("upload")), Depends(authorize("delete"))

    async def audit(request: Request, principal: Principal,
                    action: Literal["download", "change", "delete"], entry: QuarantineEntry,
                    **detail: Any) -> None:
        if record is None:
            return
        await asyncio.to_thread(
            record, request, principal, action, patient_id=entry.patient_id,
            patient_name=entry.patient_name, study_uid=entry.study_instance_uid,
            detail={"object": "quarantine-entry", "entry": entry.id,
                    "sopInstanceUid": entry.sop_instance_uid, **detail})

    async def synced() -> None:
        await asyncio.to_thread(index.sync)

    @api.get("", response_model=QuarantinePage, response_model_by_alias=True,
             dependencies=[viewer],
             summary="List quarantined instances, newest first, with counts per reason")
    async def list_entries(
        status: QuarantineStatus | None = None,
        reason: str | None = Query(default=None, max_length=100),
        transport: TRANSPORTS | None = None,
        patient: str | None = Query(default=None, max_length=200,
                                    description="Part of the patient id or name"),
        since: datetime | None = Query(default=None, description="Received at or after"),
        until: datetime | None = Query(default=None, description="Received before"),
        limit: int = Query(default=50, ge=1, le=1000),
        offset: int = Query(default=0, ge=0),
    ) -> QuarantinePage:
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise BadRequest(f"{name} needs a time zone (e.g. 2026-01-05T08:00:00Z)",
                                 field=name)
        await synced()
        items, total = await asyncio.to_thread(
            index.list, status=status, reason=reason, transport=transport, patient=patient,
            since=since, until=until, limit=limit, offset=offset)
        counts = await asyncio.to_thread(index.reason_counts, status=status)
        return QuarantinePage(items=[QuarantineOut.of(e) for e in items], total=total,
                              limit=limit, offset=offset, reason_counts=counts)

    @api.get("/{entry_id}", response_model=QuarantineDetail, response_model_by_alias=True,
             dependencies=[viewer], summary="One entry: metadata, reasons and its tags as read")
    async def get_entry(entry_id: str) -> QuarantineDetail:
        await synced()
        entry = await asyncio.to_thread(index.get, entry_id)
        tags: list[dicom_edit.TagView] = []
        error: str | None = "the bytes are gone" if entry.status == "discarded" else None
        path = spool.data_path(index.folder, entry.id)
        if path.exists():
            data = await asyncio.to_thread(path.read_bytes)
            tags, error = await asyncio.to_thread(dicom_edit.describe, data)
        elif error is None:
            error = "the bytes are missing from the quarantine folder"
        base = QuarantineOut.of(entry).model_dump()
        return QuarantineDetail(**base, tags=[TagOut(**t.__dict__) for t in tags],
                                tags_error=error)

    @api.get("/{entry_id}/file", response_class=Response, summary="The bytes as received",
             responses={200: {"content": {"application/dicom": {}}}})
    async def download(entry_id: str, request: Request,
                       principal: Principal = downloader) -> Response:
        await synced()
        entry = await asyncio.to_thread(index.get, entry_id)
        data = await asyncio.to_thread(index.data, entry_id)
        await audit(request, principal, "download", entry, bytes=len(data))
        name = _SAFE_NAME.sub("_", entry.sop_instance_uid or entry.id)[:100] or entry.id
        return Response(data, media_type="application/dicom", headers={
            "Content-Disposition": f'attachment; filename="{name}.dcm"'})

    async def reingest(entry: QuarantineEntry, data: bytes, kind: str, by: str,
                       fix: dict[str, Any] | None) -> ReingestOut:
        attempt: dict[str, Any] = {"kind": kind, **({"fix": fix} if fix else {})}
        try:
            answer = await orthanc.post_instance(data)
        except OrthancHttpError as exc:
            attempt.update(result="refused", orthanc_http_status=exc.status)
            await asyncio.to_thread(index.record_attempt, entry.id, attempt, by=by)
            if exc.status in (400, 415):
                raise OrthancRefused("Orthanc refused the instance as not readable DICOM",
                                     orthancHttpStatus=exc.status) from None
            raise
        if isinstance(answer, dict) and answer.get("ID"):
            attempt.update(result="stored", orthanc_status=answer.get("Status"))
            updated = await asyncio.to_thread(index.mark_reingested, entry.id,
                                              str(answer["ID"]), attempt, by=by)
            return ReingestOut(result="stored", orthanc_id=str(answer["ID"]),
                               orthanc_status=answer.get("Status"),
                               entry=QuarantineOut.of(updated))
        new_id = spool.entry_id(data)
        await synced()
        found = await asyncio.to_thread(spool.read_entry, index.folder, new_id)
        reasons = _reasons(found.meta.get("reasons") or []) if found else []
        if found is not None and new_id != entry.id:
            await asyncio.to_thread(index.link_parent, new_id, entry.id)
        attempt.update(result="quarantined", entry=new_id if found else None,
                       reasons=[r.code for r in reasons])
        updated = await asyncio.to_thread(index.record_attempt, entry.id, attempt, by=by)
        return ReingestOut(result="quarantined", new_entry=new_id if found else None,
                           reasons=reasons, entry=QuarantineOut.of(updated))

    async def held(entry_id: str) -> tuple[QuarantineEntry, bytes]:
        await synced()
        entry = await asyncio.to_thread(index.get, entry_id)
        if entry.status != QuarantineStatus.HELD:
            raise QuarantineConflict(f"quarantine entry {entry_id} is {entry.status.value}")
        return entry, await asyncio.to_thread(index.data, entry_id)

    @api.post("/{entry_id}/reingest", response_model=ReingestOut, response_model_by_alias=True,
              summary="Send the bytes as received through the gate again")
    async def reingest_as_received(entry_id: str, request: Request,
                                   principal: Principal = uploader) -> ReingestOut:
        entry, data = await held(entry_id)
        answer = await reingest(entry, data, "reingest", principal.name, None)
        await audit(request, principal, "change", entry, operation="reingest",
                    result=answer.result)
        return answer

    @api.post("/{entry_id}/fix", response_model=ReingestOut, response_model_by_alias=True,
              summary="Edit or remove tags, then send the fixed bytes through the gate")
    async def fix(entry_id: str, body: FixRequest, request: Request,
                  principal: Principal = uploader) -> ReingestOut:
        entry, data = await held(entry_id)
        edits: dict[str, Any] = {k: (v.model_dump() if isinstance(v, TagEdit) else v)
                                 for k, v in body.edits.items()}
        try:
            fixed = await asyncio.to_thread(dicom_edit.apply_fix, data, edits, body.remove)
        except dicom_edit.EditError as exc:
            raise Unprocessable(str(exc), field="edits") from None
        answer = await reingest(entry, fixed, "fix", principal.name,
                                {"edits": edits, "remove": body.remove})
        await audit(request, principal, "change", entry, operation="fix",
                    result=answer.result, edited=sorted(edits), removed=body.remove)
        return answer

    @api.delete("/{entry_id}", response_model=QuarantineOut, response_model_by_alias=True,
                summary="Discard: the row says discarded, then the bytes are deleted for good")
    async def discard(entry_id: str, request: Request,
                      principal: Principal = deleter) -> QuarantineOut:
        discarded = await asyncio.to_thread(index.discard, entry_id, by=principal.name)
        await audit(request, principal, "delete", discarded, operation="discard")
        return QuarantineOut.of(discarded)

    return api
