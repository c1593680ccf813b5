"""``/api/audit``: search the audit trail, export it (CSV for a spreadsheet, DICOM audit messages
for an audit repository), and check its hash chain.

The four routes take the same filters: ``from`` and ``to`` (ISO 8601 with a time zone; ``to``
exclusive), ``operator``, ``action`` (repeated or comma-separated), ``patient`` (a piece of the
id or name), ``unit``, ``tenant``, ``outcome``, ``study`` (Study Instance UID), and for the JSON
page ``limit`` and ``offset``. Rows come newest first. A value that cannot be used is a 400
problem whose ``errors`` name the parameter. The exports hold at most ``export_limit`` rows;
asking for more is a 400 that says to narrow the filter.

Who may: the dependency passed in (``require("audit-read")``) guards every route, and the
principal it returns decides whose rows the searches and exports hold: every row for
``audit-read`` on the region, else only the rows of the tenants it holds ``audit-read`` on
(:func:`readable_tenants`). The chain check walks every row either way: it shows no content.
Reading the trail is itself recorded (``audit-read``, ATNA "Audit Log Used"): one row per search,
export or check, with the filter used and how many rows it found.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from archive_audit import atna, export_csv
from archive_audit.chain import AuditLog, VerifyResult
from archive_audit.records import AuditRecord
from archive_audit.search import AuditFilter, FilterError, iterate
from archive_auth.permissions import ALL_TENANTS
from archive_auth.principal import Principal

from .authz import Activity
from .errors import BadRequest
from .camel import CamelModel

#: Most rows one CSV or ATNA export holds.
EXPORT_LIMIT = 100_000
AUDIT_READ = "audit-read"


def readable_tenants(principal: Principal | None) -> tuple[str, ...] | None:
    """The tenants whose rows ``principal`` may read; None: every row (``audit-read`` on the
    region, security off, or no principal from a dependency that checks nothing)."""
    if principal is None:
        return None
    tenants = principal.tenants_with(AUDIT_READ)
    return None if ALL_TENANTS in tenants else tuple(sorted(tenants))




class AuditEventOut(CamelModel):
    id: int
    at: datetime
    action: str
    outcome: str
    actor: str
    actor_kind: str
    source_ip: str | None
    tenant: str | None
    unit: str | None
    patient_id: str | None
    patient_name: str | None
    study_uid: str | None
    resource: str | None
    session: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, r: AuditRecord) -> "AuditEventOut":
        return cls(id=r.id, at=r.at, action=r.action, outcome=r.outcome, actor=r.actor,
                   actor_kind=r.actor_kind, source_ip=r.source_ip, tenant=r.tenant, unit=r.unit,
                   patient_id=r.patient_id, patient_name=r.patient_name, study_uid=r.study_uid,
                   resource=r.resource, session=r.session, detail=r.detail,
                   prev_hash=r.prev_hash, hash=r.hash)


class AuditPageOut(CamelModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


class VerifyOut(CamelModel):
    ok: bool
    checked: int
    head_id: int
    head_hash: str
    first_bad_id: int | None
    problem: str | None
    message: str | None

    @classmethod
    def of(cls, v: VerifyResult) -> "VerifyOut":
        return cls(ok=v.ok, checked=v.checked, head_id=v.head_id, head_hash=v.head_hash,
                   first_bad_id=v.first_bad_id, problem=v.problem, message=v.message)


def _bad(parameter: str, message: str) -> BadRequest:
    return BadRequest(f"invalid value for {parameter}: {message}",
                      errors=[{"field": parameter, "message": message}])


def _time(parameter: str, value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad(parameter, "须为 ISO 8601 时间 / must be an ISO 8601 time, e.g. "
                              "2026-12-01T08:00:00+08:00") from None


def _actions(values: list[str]) -> tuple[str, ...]:
    return tuple(a.strip() for v in values for a in v.split(",") if a.strip())


def _blank(value: str | None) -> str | None:
    return value if value is None or value.strip() else None


def _filter(start: str | None, end: str | None, operator: str | None, action: list[str],
            patient: str | None, unit: str | None, tenant: str | None, outcome: str | None,
            study: str | None, tenants: tuple[str, ...] | None) -> AuditFilter:
    try:
        return AuditFilter(start=_time("from", start), end=_time("to", end),
                           operator=_blank(operator), actions=_actions(action),
                           patient=_blank(patient), unit=_blank(unit), tenant=_blank(tenant),
                           outcome=_blank(outcome), study=_blank(study), tenants=tenants)
    except FilterError as exc:
        raise _bad(exc.parameter, exc.message) from None


def _paged(query: AuditFilter, limit: int, offset: int) -> AuditFilter:
    try:
        return dataclasses.replace(query, limit=limit, offset=offset)
    except FilterError as exc:
        raise _bad(exc.parameter, exc.message) from None


def used_filter(query: AuditFilter) -> dict[str, Any]:
    """The criteria a search gave, for its own audit row (empty ones left out)."""
    given = {"from": query.start.isoformat() if query.start else None,
             "to": query.end.isoformat() if query.end else None, "operator": query.operator,
             "action": list(query.actions) or None, "patient": query.patient,
             "unit": query.unit, "tenant": query.tenant, "outcome": query.outcome,
             "study": query.study}
    return {name: value for name, value in given.items() if value is not None}


def router(audit: AuditLog, authorize: Callable[..., Principal | None], *,
           source: atna.AuditSource | None = None,
           export_limit: int = EXPORT_LIMIT, record: Activity | None = None) -> APIRouter:
    """The routes over ``audit``, each guarded by the dependency ``authorize``, whose
    principal limits the rows found to its tenants (:func:`readable_tenants`); ``record``
    (when given) records each use of the trail."""
    api = APIRouter(prefix="/api", tags=["audit"], dependencies=[Depends(authorize)])
    reporter = source or atna.AuditSource()

    async def used(request: Request, principal: Principal | None, operation: str,
                   query: AuditFilter | None, rows: int) -> None:
        if record is None or principal is None:
            return
        detail: dict[str, Any] = {"operation": operation, "rows": rows}
        if query is not None:
            detail["filter"] = used_filter(query)
        await asyncio.to_thread(record, request, principal, "audit-read", detail=detail)

    def filters(
        start: str | None = Query(default=None, alias="from",
                                  description="At or after (ISO 8601 with zone)"),
        end: str | None = Query(default=None, alias="to", description="Before (ISO 8601)"),
        operator: str | None = Query(default=None, description="Who acted (user, key, AE)"),
        action: list[str] = Query(default=[], description="Actions, repeated or a,b"),
        patient: str | None = Query(default=None, description="Part of patient id or name"),
        unit: str | None = Query(default=None, description="Org unit id"),
        tenant: str | None = Query(default=None),
        outcome: str | None = Query(default=None, description="success, failure, denied"),
        study: str | None = Query(default=None, description="Study Instance UID"),
        principal: Principal | None = Depends(authorize),
    ) -> AuditFilter:
        return _filter(start, end, operator, action, patient, unit, tenant, outcome, study,
                       readable_tenants(principal))

    async def exported(query: AuditFilter, request: Request, principal: Principal | None,
                       operation: str) -> Iterator[AuditRecord]:
        total = (await asyncio.to_thread(audit.search, _paged(query, 1, 0))).total
        if total > export_limit:
            raise BadRequest(f"{total} 条记录超过导出上限 {export_limit}，请缩小筛选范围 / "
                             f"{total} rows are more than an export holds ({export_limit}); "
                             "narrow the filter", total=total, limit=export_limit)
        # Recorded before the rows are streamed: an export whose filter matches its own row
        # holds it too (``rows`` counts what matched before it).
        await used(request, principal, operation, query, total)
        return iterate(audit.engine, query, maximum=export_limit)

    def filename(extension: str) -> str:
        return f"audit-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.{extension}"

    @api.get("/audit", response_model=AuditPageOut, response_model_by_alias=True,
             summary="Search the audit trail, newest first")
    async def list_audit(request: Request, query: AuditFilter = Depends(filters),
                         limit: int = Query(default=50), offset: int = Query(default=0),
                         principal: Principal | None = Depends(authorize),
                         ) -> AuditPageOut:
        page = await asyncio.to_thread(audit.search, _paged(query, limit, offset))
        await used(request, principal, "search", query, page.total)
        return AuditPageOut(items=[AuditEventOut.of(r) for r in page.items], total=page.total,
                            limit=page.limit, offset=page.offset)

    @api.get("/audit.csv", response_class=StreamingResponse,
             summary="The rows found, as CSV (UTF-8 with BOM, Chinese and English headers)")
    async def audit_csv(request: Request, query: AuditFilter = Depends(filters),
                        principal: Principal | None = Depends(authorize)) -> StreamingResponse:
        rows = await exported(query, request, principal, "csv")
        return StreamingResponse(export_csv.encoded(rows), media_type=export_csv.MEDIA_TYPE,
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{filename("csv")}"'})

    @api.get("/audit/atna", response_class=StreamingResponse,
             summary="The rows found, as DICOM audit messages (PS3.15 A.5, RFC 3881)")
    async def audit_atna(request: Request, query: AuditFilter = Depends(filters),
                         principal: Principal | None = Depends(authorize)) -> StreamingResponse:
        rows = await exported(query, request, principal, "atna")
        return StreamingResponse(atna.document(rows, reporter), media_type=atna.MEDIA_TYPE,
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{filename("xml")}"'})

    @api.get("/audit/verify", response_model=VerifyOut, response_model_by_alias=True,
             summary="Check the hash chain; names the first row that breaks it")
    async def audit_verify(request: Request,
                           principal: Principal | None = Depends(authorize)) -> VerifyOut:
        verdict = await asyncio.to_thread(audit.verify)
        # After the check, so that the row it adds is not part of what it checked.
        await used(request, principal, "verify", None, verdict.checked)
        return VerifyOut.of(verdict)

    return api
