"""Plain request/response values for our REST routes, so handlers run without Orthanc.

The Orthanc adapter turns Orthanc's callback arguments into a :class:`Request` and writes a
:class:`Response` back; a domain error becomes an HTTP status with a JSON body in one place
(:func:`error_response`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ArchiveError, BadRequest, ConfigError, NotFound


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    groups: tuple[str, ...] = ()
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
    return Response(status=status, body=body, content_type="application/json; charset=utf-8")


def error_response(exc: Exception) -> Response:
    """The one place where an exception becomes an HTTP answer."""
    status = 500
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, BadRequest):
        status = 400
    elif isinstance(exc, ConfigError):
        status = 500
    kind = type(exc).__name__ if isinstance(exc, ArchiveError) else "InternalError"
    return json_response({"error": kind, "message": str(exc)}, status)
