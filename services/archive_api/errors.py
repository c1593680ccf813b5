"""The API's exceptions and its one error translation: RFC 9457 problem details for ``/api``.

Every error leaves the service as ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance`` (RFC 9457 §3.1). What a client reads is written for it:
our own exceptions carry their status and a message meant to be shown; Orthanc's errors
are mapped to a status (404 → 404, 400 → 400, unreachable → 503) with our own words, never
Orthanc's text; anything unexpected is a 500 that says only an incident id, under which the
exception is logged. Validation errors name the field (400 for the query and path, 422 for a
body).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from archive_state.errors import StateError

from .orthanc import CredentialMissing, OrthancHttpError, OrthancUnreachable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: Orthanc's own error code for a tag name it does not know (``ErrorCode_UnknownDicomTag``).
ORTHANC_UNKNOWN_TAG = 27


class ApiError(Exception):
    """Base of the errors this service raises on purpose; ``detail`` is shown to the client."""

    status = 500

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class NotAcceptable(ApiError):
    status = 406


class UnsupportedMediaType(ApiError):
    status = 415


class Unprocessable(ApiError):
    status = 422


class ServiceUnavailable(ApiError):
    status = 503


def problem(status: int, detail: str | None, instance: str, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("query", "path", "body", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Register the translators; call once on the app."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem(exc.status, exc.detail, request.url.path, **exc.extensions)

    async def state_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StateError)
        if exc.status >= 500:
            return await unexpected(request, exc)
        return problem(exc.status, str(exc), request.url.path)

    async def orthanc_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrthancHttpError)
        if exc.status == 404:
            return problem(404, "Orthanc has no such resource", request.url.path)
        if exc.status == 400:
            return problem(400, "Orthanc refused the request as malformed", request.url.path)
        if exc.orthanc_status == ORTHANC_UNKNOWN_TAG:
            return problem(400, "a query key is not a DICOM attribute Orthanc knows",
                           request.url.path)
        return _incident(request, exc, 502, "Orthanc failed to answer")

    async def orthanc_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return problem(503, "Orthanc is not reachable right now; try again shortly",
                       request.url.path)

    async def credential(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s", exc)
        return problem(503, "the service is not set up to reach Orthanc", request.url.path)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))}
                  for e in exc.errors()]
        in_body = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        status = 422 if in_body else 400
        names = ", ".join(sorted({e["field"] for e in errors}))
        return problem(status, f"invalid value for {names}", request.url.path, errors=errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None
        if detail == HTTPStatus(exc.status_code).phrase:
            detail = None
        response = problem(exc.status_code, detail, request.url.path)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _incident(request, exc, 500, None)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StateError, state_error)
    app.add_exception_handler(OrthancHttpError, orthanc_http)
    app.add_exception_handler(OrthancUnreachable, orthanc_down)
    app.add_exception_handler(CredentialMissing, credential)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _incident(request: Request, exc: BaseException, status: int,
              detail: str | None) -> JSONResponse:
    incident = uuid.uuid4().hex[:16]
    log.error("incident %s: %s %s", incident, request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    text = f"{detail + '; ' if detail else ''}incident {incident}"
    return problem(status, text, request.url.path, incident=incident)
