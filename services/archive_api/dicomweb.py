"""``/api/dicom-web/{studies,series,instances}``: QIDO-RS with decoded values (see :mod:`.qido`).

The route runs the plan of :func:`archive_api.qido.plan` against Orthanc over loopback. Whether
the platform needs it is found out once, from Orthanc itself (:class:`DecodingProbe`): a
DICOMweb plugin that answers ``limit=%31`` with 400 is reading undecoded values. Where Orthanc
decodes (no such platform is known yet), the route passes the query through unchanged, so the
viewer's ``qidoRoot`` works on every platform.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from . import qido
from .errors import BadRequest
from .orthanc import AsyncOrthanc, OrthancHttpError

log = logging.getLogger(__name__)

FEATURE = "qido-decoding"
DICOM_JSON = "application/dicom+json"
def dicomweb_root(orthanc_config: Mapping[str, Any]) -> str:
    section = orthanc_config.get("DicomWeb")
    root = section.get("Root", "/dicom-web/") if isinstance(section, Mapping) else "/dicom-web/"
    return "/" + str(root).strip("/")


def qido_case_sensitive(orthanc_config: Mapping[str, Any]) -> bool | None:
    """``DicomWeb.QidoCaseSensitive`` when set: DICOMweb passes it to ``/tools/find`` only then."""
    section = orthanc_config.get("DicomWeb")
    value = section.get("QidoCaseSensitive") if isinstance(section, Mapping) else None
    return value if isinstance(value, bool) else None


class DecodingProbe:
    """Whether this Orthanc's DICOMweb reads query values undecoded; asked once, then kept.

    Unknown until Orthanc answers (it may start after the API); ``None`` meanwhile, and a search
    arriving then is planned as if decoding were needed, which is right on both known platforms.
    """

    def __init__(self, orthanc: AsyncOrthanc, root: str) -> None:
        self._orthanc = orthanc
        self._root = root
        self.needed: bool | None = None
        self._lock = asyncio.Lock()

    async def check(self, timeout: float = 2.0) -> bool | None:
        if self.needed is not None:
            return self.needed
        async with self._lock:
            if self.needed is None:
                try:
                    await self._orthanc.request("GET", f"{self._root}/studies", timeout=timeout,
                                                raw_query="limit=%31")
                    self.needed = False
                except OrthancHttpError as exc:
                    if exc.status == 400:
                        self.needed = True
                    else:
                        log.warning("QIDO decoding probe: %s", exc)
                except Exception as exc:  # unreachable: ask again next time
                    log.info("QIDO decoding probe: Orthanc not reachable yet (%s)", exc)
            if self.needed is not None:
                log.info("QIDO decoding %s", "needed: enabled" if self.needed else "not needed")
        return self.needed


def _forwarded(request: Request) -> dict[str, str]:
    """Headers DICOMweb builds its Retrieve URLs and answer format from (Accept, Forwarded).

    DICOMweb reads only ``Forwarded`` (RFC 7239) for the links' scheme and host; the door sends
    the API ``X-Forwarded-Host``/``-Proto``, so those become ``Forwarded`` here, and the links
    point at the door with the client's scheme, as those of WADO-RS do.
    """
    headers = {k: v for k, v in request.headers.items() if k in ("accept", "forwarded")}
    if "forwarded" not in headers:
        host = request.headers.get("x-forwarded-host") or request.headers.get("host")
        proto = request.headers.get("x-forwarded-proto") or request.url.scheme
        if host:
            # Unquoted: DICOMweb takes the value after "host=" as it stands (RFC 7239 would
            # quote a host with a port, and DICOMweb would put the quotes in the URL).
            headers["forwarded"] = f"host={host};proto={proto}"
    return headers


@dataclass(frozen=True)
class QidoService:
    orthanc: AsyncOrthanc
    root: str
    probe: DecodingProbe
    case_sensitive: bool | None

    async def search(self, request: Request, search: qido.SearchPath) -> Response:
        raw = request.scope.get("query_string", b"")
        needed = await self.probe.check()
        headers = _forwarded(request)
        parsed = qido.parse_query(qido.decode_query_string(raw))  # validated on every platform
        try:
            if needed is False:
                query = qido.passthrough_query(raw)
                answer = await self._direct(qido.DirectPlan(search.below_root(), query), headers)
            else:
                plan = qido.plan(search, parsed, case_sensitive=self.case_sensitive)
                answer = (await self._direct(plan, headers) if isinstance(plan, qido.DirectPlan)
                          else await self._resolved(plan, search.level, headers))
        except OrthancHttpError as exc:
            if exc.status == 400:
                raise qido.refused_by_orthanc(parsed) from None
            raise
        warning = qido.ignored_warning(parsed)
        if warning is not None:
            answer.headers["Warning"] = warning
        return answer

    async def _direct(self, plan: qido.DirectPlan, headers: Mapping[str, str]) -> Response:
        answer = await self.orthanc.request("GET", self.root + plan.path, raw_query=plan.query,
                                            headers=headers)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", DICOM_JSON))

    async def _resolved(self, plan: qido.ResolvedPlan, level: qido.Level,
                        headers: Mapping[str, str]) -> Response:
        found = await self.orthanc.post_json("/tools/find", plan.find)
        uids = plan.page(qido.uids_of(found if isinstance(found, list) else [], level))
        headers = {**headers, "accept": DICOM_JSON}
        items: list[Any] = []
        for query in plan.dicomweb_queries(uids):
            answer = await self.orthanc.request("GET", self.root + plan.path, raw_query=query,
                                                headers=headers)
            page = answer.json() if answer.content else []
            if isinstance(page, list):
                items.extend(page)
        body = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return Response(body, media_type=DICOM_JSON)


def router(service: QidoService) -> APIRouter:
    """The six QIDO-RS search resources of PS3.18 §10.6.1 under ``/api/dicom-web``."""
    api = APIRouter(prefix="/api/dicom-web", tags=["dicom-web"])
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "The DICOMweb plugin's answer (DICOM JSON, PS3.18 F.2)",
              "content": {DICOM_JSON: {}}},
    }

    async def run(request: Request, search: qido.SearchPath) -> Response:
        try:
            return await service.search(request, search)
        except qido.QueryError as exc:
            raise BadRequest(str(exc), parameter=exc.parameter) from None

    def level_route(level: qido.Level) -> None:
        async def handler(request: Request) -> Response:
            return await run(request, _search(level))
        handler.__name__ = f"search_{level}"
        api.add_api_route(f"/{level}", handler, methods=["GET"], responses=responses,
                          summary=f"QIDO-RS search for {level}, values decoded",
                          response_class=Response)

    for level in ("studies", "series", "instances"):
        level_route(level)  # type: ignore[arg-type]

    @api.get("/studies/{study}/series", responses=responses, response_class=Response,
             summary="QIDO-RS search for the series of a study")
    async def study_series(request: Request, study: str) -> Response:
        return await run(request, _search("series", study))

    @api.get("/studies/{study}/instances", responses=responses, response_class=Response,
             summary="QIDO-RS search for the instances of a study")
    async def study_instances(request: Request, study: str) -> Response:
        return await run(request, _search("instances", study))

    @api.get("/studies/{study}/series/{series}/instances", responses=responses,
             response_class=Response, summary="QIDO-RS search for the instances of a series")
    async def series_instances(request: Request, study: str, series: str) -> Response:
        return await run(request, _search("instances", study, series))

    return api


def _search(level: qido.Level, study: str | None = None,
            series: str | None = None) -> qido.SearchPath:
    try:
        return qido.SearchPath(level, study, series)
    except qido.QueryError as exc:
        raise BadRequest(str(exc), parameter=exc.parameter) from None
