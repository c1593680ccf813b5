"""The OHIF viewer, served from the installed build under ``Archive.Viewer.Root``.

Same origin as ``/dicom-web/``, so the browser needs no CORS. OHIF is a single-page app: a path
that is not a file of the build (``/ohif/viewer``, ``/ohif/viewer/dicomweb`` …) answers
``index.html`` so deep links and reloads work.

The npm package's build is made for ``/``. ``scripts/install-ohif`` makes its bundles find their
chunks and workers under whatever root ``index.html`` announces in ``window.PUBLIC_URL``; this
module then rebases ``index.html`` to the configured root on each request (a 5 kB file) and
renders ``app-config.js`` from our template (``ohif-config/app-config.js``), pointing OHIF at
DICOMweb on the same origin (searches through the decoding route of :mod:`.qido`). One installed
build therefore serves any root: ``/ohif/`` here, ``/t/<tenant>/ohif/`` behind the nginx edge.
See ``ohif-config/README.md``.
"""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import ArchiveError, ConfigError, NotFound
from .features import PluginContext
from .http import Request, Response
from .qido import ROOT as QIDO_ROOT
from .settings import ArchiveSettings


class ViewerBuildError(ArchiveError):
    """The installed OHIF build does not look like the one this module knows how to serve."""


_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".webapp": "application/json; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".map": "application/json",
}

#: Suffixes of files a build holds; a missing path with another (or no) suffix is a client-side
#: route such as ``/ohif/viewer/dicomweb`` or one ending in a UID (``…/1.2.840.10008``).
_ASSET_SUFFIXES = frozenset(_TYPES) | {".txt", ".gif", ".jpg", ".jpeg", ".ttf", ".woff", ".eot"}

#: webpack names long-lived files after their content: ``app.bundle.096daabbdde29bd851ab.js``,
#: ``17dd54813d5acc10bf8f.wasm``. Such a name never changes content, so browsers may keep it.
_CONTENT_HASH = re.compile(r"(?:^|[.-])[0-9a-f]{16,}\.[a-z0-9]+$")

IMMUTABLE = "public, max-age=31536000, immutable"
#: Files install-ohif rewrote keep their content-hashed names, but a later install with other
#: rewrites (same OHIF version) changes their content: browsers keep them for a day only.
REWRITTEN = "public, max-age=86400"
#: Everything else is revalidated on each load: these files keep their names across OHIF
#: versions. (Orthanc's plugin SDK cannot answer 304, so "revalidate" means "download again";
#: the files concerned are small: index.html, app-config.js, the CSS, icons.)
REVALIDATE = "no-cache"

#: Written by install-ohif into the build folder: OHIF version, rewrite level, rewritten files.
INSTALL_STAMP = ".archive-ohif-install.json"

#: OHIF's i18next resource keys for our ``Archive.Viewer.DefaultLanguage`` values.
OHIF_LANGUAGES = {"zh": "zh", "en": "en-US"}

APP_CONFIG = "app-config.js"
INDEX = "index.html"


def content_type(path: PurePosixPath | Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def cache_control(name: str, rewritten: frozenset[str] = frozenset()) -> str:
    """``Cache-Control`` for a build file, by its name (``rewritten``: see :data:`REWRITTEN`)."""
    if not _CONTENT_HASH.search(name):
        return REVALIDATE
    return REWRITTEN if name in rewritten else IMMUTABLE


def rewritten_files(build: Path) -> frozenset[str]:
    """The files of ``build`` that install-ohif rewrote, from its stamp (none if unstamped)."""
    try:
        stamp = json.loads((build / INSTALL_STAMP).read_text(encoding="utf-8"))
        return frozenset(str(name) for name in stamp.get("rewritten", ()))
    except (OSError, ValueError, AttributeError, TypeError):
        return frozenset()


def resolve(build: Path, relative: str) -> Path:
    """Map a request path below the viewer root to a file of the build.

    Paths that escape the build folder or name a hidden file (the install stamp) are refused;
    paths that are not files fall back to ``index.html`` (client-side routes), except when they
    look like a missing asset, which is a 404 rather than HTML the browser would try to run.
    """
    root = build.resolve()
    parts = [p for p in relative.split("/") if p]
    if any(p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
        raise NotFound(f"no such viewer file: {relative}")
    candidate = root.joinpath(*parts).resolve()
    if root not in candidate.parents and candidate != root:
        raise NotFound(f"no such viewer file: {relative}")
    if candidate.is_file():
        return candidate
    if parts and PurePosixPath(parts[-1]).suffix.lower() in _ASSET_SUFFIXES:
        raise NotFound(f"no such viewer file: {relative}")
    return root / INDEX


# --- index.html -----------------------------------------------------------------------------

_PUBLIC_URL = re.compile(r"window\.PUBLIC_URL\s*=\s*'/'")
_ROOT_ATTRIBUTE = re.compile(r'(\s(?:src|href|content)=")/(?!/)')
#: What index.html of the npm build must contain; missing means OHIF changed its template.
_INDEX_EXPECTED = (
    ('src="/app-config.js"', "the app-config.js script"),
    ('src="/init-service-worker.js"', "the service-worker script"),
    ('<script defer="defer" src="/app.bundle.', "the app bundle script"),
    ('href="/app.bundle.css"', "the app stylesheet"),
)


def rebase_index_html(text: str, root: str) -> str:
    """Point the index.html of a build made for ``/`` at ``root`` (``/ohif/``).

    Rewrites ``window.PUBLIC_URL`` (from which OHIF derives its router base and, after
    install-ohif, where webpack loads chunks and workers) and every root-absolute ``src``,
    ``href`` and ``content`` attribute. Raises :class:`ViewerBuildError` if a reference the
    viewer cannot work without is missing, so an OHIF upgrade fails loudly instead of serving
    a blank page.
    """
    missing = [what for needle, what in _INDEX_EXPECTED if needle not in text]
    if not _PUBLIC_URL.search(text):
        missing.append("window.PUBLIC_URL = '/'")
    if missing:
        raise ViewerBuildError(
            f"{INDEX}: expected {', '.join(missing)} of a build made for '/'; "
            "has the OHIF version changed?"
        )
    text = _PUBLIC_URL.sub(lambda _m: f"window.PUBLIC_URL = {json.dumps(root)}", text)
    return _ROOT_ATTRIBUTE.sub(lambda m: m.group(1) + root, text)


# --- app-config.js --------------------------------------------------------------------------


def _prefix(viewer_root: str) -> str:
    """What the archive's paths are below, seen from the browser: ``/ohif/`` → ``""``,
    ``/t/x/ohif/`` → ``/t/x`` (behind the edge each archive serves under its own prefix)."""
    return viewer_root.rstrip("/").rsplit("/", 1)[0]


def dicomweb_root(viewer_root: str) -> str:
    """WADO-RS: Orthanc's DICOMweb plugin, the viewer root's sibling (``/t/x/dicom-web``)."""
    return f"{_prefix(viewer_root)}/dicom-web"


def qido_root(viewer_root: str) -> str:
    """QIDO-RS: our decoding route (see :mod:`.qido`), which Orthanc 1.10 needs for searches
    with non-ASCII or comma-separated values (``/t/x/api/dicom-web``)."""
    return f"{_prefix(viewer_root)}{QIDO_ROOT}"


_PRELUDE = """\
/*
 * Written by the regional archive from its Archive.Viewer settings; the template named by
 * Archive.Viewer.AppConfig follows. ARCHIVE_VIEWER is what the template may use.
 */
window.ARCHIVE_VIEWER = Object.freeze({settings});
(function (language) {{
  // OHIF's i18next takes the language from ?lng=, the "i18next" cookie, localStorage
  // "i18nextLng", then the browser, and remembers what it found. A browser that has not
  // chosen yet starts in the archive's default language.
  try {{
    var chosen = new URLSearchParams(window.location.search).has('lng') ||
      window.localStorage.getItem('i18nextLng') !== null ||
      /(?:^|;\\s*)i18next=/.test(document.cookie);
    if (!chosen) {{
      window.localStorage.setItem('i18nextLng', language);
    }}
  }} catch (e) {{
    // Storage disabled: the browser's language applies.
  }}
}})(window.ARCHIVE_VIEWER.defaultLanguage);

"""


def render_app_config(template: str, *, root: str, default_language: str) -> str:
    """Our ``app-config.js``: the settings the template reads, then the template itself."""
    settings = {
        "root": root,
        "routerBasename": root.rstrip("/"),
        "dicomWebRoot": dicomweb_root(root),
        "qidoRoot": qido_root(root),
        "defaultLanguage": OHIF_LANGUAGES.get(default_language, default_language),
    }
    return _PRELUDE.format(settings=json.dumps(settings, indent=2)) + template


# --- serving --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewerSite:
    """Answers for every path below the viewer root; reads the files, keeps no state."""

    build: Path
    root: str
    app_config: Path
    default_language: str

    def answer(self, relative: str) -> Response:
        if relative.strip("/") == APP_CONFIG:
            return self._app_config()
        path = resolve(self.build, relative)
        if path.name == INDEX and path.parent == self.build.resolve():
            return self._index(path)
        rewritten = rewritten_files(self.build) if path.parent == self.build.resolve() else frozenset()
        return Response(
            body=path.read_bytes(),
            content_type=content_type(path),
            headers={"Cache-Control": cache_control(path.name, rewritten)},
        )

    def _index(self, path: Path) -> Response:
        html = rebase_index_html(path.read_text(encoding="utf-8"), self.root)
        return Response(
            body=html.encode("utf-8"),
            content_type=_TYPES[".html"],
            headers={"Cache-Control": REVALIDATE},
        )

    def _app_config(self) -> Response:
        try:
            template = self.app_config.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                "Archive.Viewer.AppConfig", f"cannot read {self.app_config}: {exc.strerror}"
            ) from exc
        script = render_app_config(template, root=self.root, default_language=self.default_language)
        return Response(
            body=script.encode("utf-8"),
            content_type=_TYPES[".js"],
            headers={"Cache-Control": REVALIDATE},
        )


@dataclass(frozen=True)
class ViewerFeature:
    name: str = "viewer"

    def is_enabled(self, settings: ArchiveSettings) -> bool:
        return settings.viewer.enabled

    def register(self, context: PluginContext) -> None:
        viewer = context.settings.viewer
        site = ViewerSite(
            build=Path(viewer.directory),
            root=viewer.root,
            app_config=Path(viewer.app_config),
            default_language=viewer.default_language,
        )
        if not (site.build / INDEX).is_file():
            context.log.error("viewer build not found at %s (run scripts/setup)", site.build)
        if not site.app_config.is_file():
            context.log.error(
                "viewer configuration Archive.Viewer.AppConfig not found: %s", site.app_config
            )
        root = viewer.root

        def handle(request: Request) -> Response:
            relative = request.path[len(root):] if request.path.startswith(root) else ""
            return site.answer(relative)

        # Orthanc 1.10 answers HEAD itself (404) before any plugin sees it: GET only.
        context.host.add_route(["GET"], root.rstrip("/") + "(/.*)?", handle)
