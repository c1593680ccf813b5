"""QIDO-RS with URL-decoded query values, forwarded in-process to Orthanc's DICOMweb plugin.

Orthanc 1.10.1 (Debian bookworm) hands query arguments to plugins still percent-encoded, and
DICOMweb 1.7 matches them as they are: ``PatientName=%E5%BC%A0*`` (how every browser and
``dicomweb-client`` sends ``张*``) finds nothing, ``limit=%31`` is a bad request. Raw UTF-8 in the
URL is refused by the HTTP server, so a client cannot work around it. This route decodes the
values and asks the DICOMweb plugin in-process, where no decoding happens; searches are still
answered by the DICOMweb plugin, never re-implemented here. The viewer's ``qidoRoot`` points here.

Orthanc gives plugins the query as a dictionary, so a key repeated in the URL
(``includefield=a&includefield=b``) arrives once; use the comma form ``includefield=a,b``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import BadRequest
from .features import PluginContext
from .http import Request, Response
from .settings import ArchiveSettings

ROOT = "/api/dicom-web"

# QIDO-RS search resources (PS3.18 §10.6): studies, series, instances, at each level.
SEARCH_PATHS = (
    r"/(studies|series|instances)",
    r"/studies/([0-9.]{1,64})/(series|instances)",
    r"/studies/([0-9.]{1,64})/series/([0-9.]{1,64})/instances",
)

_UNSAFE = re.compile(r"[&#\x00-\x1f]")


def decoded_query(arguments: Mapping[str, str]) -> str:
    """The query string with every key and value percent-decoded (UTF-8), for in-process use."""
    parts: list[str] = []
    for key, value in arguments.items():
        k, v = unquote(key, errors="strict"), unquote(value, errors="strict")
        if _UNSAFE.search(k) or _UNSAFE.search(v):
            raise BadRequest(f"query parameter {k!r} holds a character QIDO-RS cannot match on")
        parts.append(f"{k}={v}")
    return "&".join(parts)


def core_uri(dicomweb_root: str, path_below_root: str, arguments: Mapping[str, str]) -> str:
    query = decoded_query(arguments)
    base = dicomweb_root.rstrip("/") + path_below_root
    return f"{base}?{query}" if query else base


@dataclass(frozen=True)
class QidoFeature:
    name: str = "qido-decoding"

    def is_enabled(self, settings: ArchiveSettings) -> bool:
        return True

    def register(self, context: PluginContext) -> None:
        dicomweb_root = context.host.dicomweb_root()

        def handle(request: Request) -> Response:
            below = request.path[len(ROOT):]
            try:
                uri = core_uri(dicomweb_root, below, request.query)
            except UnicodeDecodeError as exc:
                raise BadRequest(f"query is not valid percent-encoded UTF-8: {exc}") from exc
            body = context.host.rest_get_after_plugins(uri)
            return Response(body=body, content_type="application/dicom+json")

        for path in SEARCH_PATHS:
            context.host.add_route(["GET"], ROOT + path, handle)
