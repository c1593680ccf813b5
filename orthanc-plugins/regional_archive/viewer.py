"""The OHIF viewer, served from the installed build under ``Archive.Viewer.Root``.

Same origin as ``/dicom-web/``, so the browser needs no CORS. OHIF is a single-page app: a path
that is not a file of the build (``/ohif/viewer``, ``/ohif/viewer/dicomweb`` …) answers
``index.html`` so deep links and reloads work.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from .errors import NotFound
from .features import PluginContext
from .http import Request, Response
from .settings import ArchiveSettings

_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".map": "application/json",
}


def content_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def resolve(build: Path, relative: str) -> Path:
    """Map a request path below the viewer root to a file of the build.

    Paths that escape the build folder are refused; paths that are not files fall back to
    ``index.html`` (client-side routes), except when they look like a missing asset.
    """
    root = build.resolve()
    candidate = (root / relative.lstrip("/")).resolve()
    if root not in candidate.parents and candidate != root:
        raise NotFound(f"no such viewer file: {relative}")
    if candidate.is_file():
        return candidate
    last = relative.rsplit("/", 1)[-1]
    if "." in last:  # an asset such as x.bundle.js that is not there
        raise NotFound(f"no such viewer file: {relative}")
    return root / "index.html"


@dataclass(frozen=True)
class ViewerFeature:
    name: str = "viewer"

    def is_enabled(self, settings: ArchiveSettings) -> bool:
        return settings.viewer.enabled

    def register(self, context: PluginContext) -> None:
        viewer = context.settings.viewer
        build = Path(viewer.directory)
        if not (build / "index.html").is_file():
            context.log.error("viewer build not found at %s (run scripts/setup)", build)
        root = viewer.root

        def handle(request: Request) -> Response:
            relative = request.path[len(root):] if request.path.startswith(root) else ""
            path = resolve(build, relative)
            cache = "no-cache" if path.suffix == ".html" else "public, max-age=31536000, immutable"
            return Response(
                body=path.read_bytes(), content_type=content_type(path),
                headers={"Cache-Control": cache},
            )

        context.host.add_route(["GET"], root.rstrip("/") + "(/.*)?", handle)
