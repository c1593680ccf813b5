"""The OHIF viewer: what the run folder holds for it and the cache policy nginx applies.

nginx serves the installed OHIF build (``Archive.Viewer.Directory``) under ``Archive.Viewer.Root``
on the same origin as ``/dicom-web/`` (no CORS). Two files are not served from the build:

- ``index.html``, rebased from ``/`` to the viewer root. ``scripts/install-ohif`` makes the
  bundles find their chunks and workers under whatever root ``window.PUBLIC_URL`` announces;
  here the page itself is pointed at the root. One installed build serves any root: ``/ohif/``,
  later ``/t/<tenant>/ohif/``.
- ``app-config.js``, rendered from our template (``ohif-config/app-config.js``) after a prelude
  with the archive's settings: WADO-RS at the root's sibling ``/dicom-web``, QIDO-RS through the
  API service's decoding route ``/api/dicom-web`` (Orthanc 1.10 hands the DICOMweb plugin
  percent-encoded query values).

Both are written once per start into ``DATA/run/ohif/``. OHIF is a single-page app: a path that
is not a file of the build answers ``index.html`` (deep links, reloads), except one that looks
like a missing asset (``.js``, ``.png`` …), which is a 404 rather than HTML the browser would run.

Caching (RFC 9111): webpack names long-lived files after their content
(``app.bundle.096daabbdde29bd851ab.js``): those are ``immutable`` for a year. Files that
install-ohif rewrote keep their hashed names, but a later install with other rewrites changes
their content: a day. Everything else is ``no-cache``, which nginx answers with 304 when the
browser's ``If-None-Match``/``If-Modified-Since`` still matches.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

from archive_config.errors import ConfigError
from archive_config.settings import ViewerSettings

from archive_tools.ohif_index import INSTALL_STAMP, rebase_index_html
from archive_tools.ohif_index import ViewerBuildError as OhifBuildError

from .errors import ViewerBuildError

#: The API service's QIDO-RS route that decodes query values (below the archive's prefix).
QIDO_ROOT: Final = "/api/dicom-web"

#: Suffixes of files a build holds; a missing path with another (or no) suffix is a client-side
#: route such as ``/ohif/viewer/dicomweb`` or one ending in a UID (``…/1.2.840.10008``).
ASSET_SUFFIXES: Final = (
    "js", "mjs", "css", "html", "json", "webapp", "xml", "wasm", "svg", "png", "ico", "woff2",
    "map", "txt", "gif", "jpg", "jpeg", "ttf", "woff", "eot",
)

#: A content hash in a file name: ``app.bundle.096daabbdde29bd851ab.js``, ``17dd54813d5acc10bf8f.wasm``.
CONTENT_HASH: Final = r"(?:^|[./-])[0-9a-f]{16,}\.[a-z0-9]+$"
_CONTENT_HASH = re.compile(CONTENT_HASH)

IMMUTABLE: Final = "public, max-age=31536000, immutable"
REWRITTEN: Final = "public, max-age=86400"
REVALIDATE: Final = "no-cache"

#: OHIF's i18next resource keys for our ``Archive.Viewer.DefaultLanguage`` values.
OHIF_LANGUAGES: Final = {"zh": "zh", "en": "en-US"}

APP_CONFIG: Final = "app-config.js"
INDEX: Final = "index.html"


def cache_control(name: str, rewritten: frozenset[str] = frozenset()) -> str:
    """``Cache-Control`` for a build file, by its name (``rewritten``: see :data:`REWRITTEN`)."""
    if not _CONTENT_HASH.search(name):
        return REVALIDATE
    return REWRITTEN if name in rewritten else IMMUTABLE


def rewritten_files(build: Path) -> frozenset[str]:
    """Paths (relative to ``build``) that install-ohif rewrote, from its stamp (none if unstamped)."""
    try:
        stamp = json.loads((build / INSTALL_STAMP).read_text(encoding="utf-8"))
        return frozenset(str(name) for name in stamp.get("rewritten", ()))
    except (OSError, ValueError, AttributeError, TypeError):
        return frozenset()


# --- index.html -----------------------------------------------------------------------------

def _prefix(viewer_root: str) -> str:
    """What the archive's paths are below, seen from the browser: ``/ohif/`` → ``""``,
    ``/t/x/ohif/`` → ``/t/x`` (behind a regional edge each archive has its own prefix)."""
    return viewer_root.rstrip("/").rsplit("/", 1)[0]


def dicomweb_root(viewer_root: str) -> str:
    """WADO-RS: Orthanc's DICOMweb plugin, the viewer root's sibling (``/t/x/dicom-web``)."""
    return f"{_prefix(viewer_root)}/dicom-web"


def qido_root(viewer_root: str) -> str:
    """QIDO-RS: the API service's decoding route (``/t/x/api/dicom-web``)."""
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


# --- the run folder -------------------------------------------------------------------------


def write_viewer_files(viewer: ViewerSettings, target: Path, source: str | None = None) -> Path:
    """Write the rebased ``index.html`` and the rendered ``app-config.js`` into ``target``.

    Returns the build folder, resolved (nginx serves it by its real path, so a symbolic link
    inside the build cannot lead out of it: ``disable_symlinks``).
    """
    build = Path(viewer.directory).resolve()
    index = build / INDEX
    if not index.is_file():
        raise ConfigError("Archive.Viewer.Directory", f"no OHIF build at {build} (run scripts/setup)", source)
    try:
        template = Path(viewer.app_config).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("Archive.Viewer.AppConfig", f"cannot read {viewer.app_config}: {exc.strerror}", source) from exc
    target.mkdir(parents=True, exist_ok=True)
    try:
        rebased = rebase_index_html(index.read_text(encoding="utf-8"), viewer.root)
    except OhifBuildError as exc:
        raise ViewerBuildError(f"{build}/{exc}") from exc
    (target / INDEX).write_text(rebased, encoding="utf-8")
    script = render_app_config(template, root=viewer.root, default_language=viewer.default_language)
    (target / APP_CONFIG).write_text(script, encoding="utf-8")
    return build
