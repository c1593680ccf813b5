"""The OHIF build's ``index.html``, rebased from ``/`` to the viewer's root, and the install stamp.

Shared by ``install-ohif`` (:mod:`.ohif_install`, which checks at install time that a build can
be rebased) and whatever renders the viewer's ``index.html`` for its root (the launcher writes it
into the run folder; nginx serves it). Pure text functions: no files, no server.
"""

from __future__ import annotations

import json
import re

#: Written by install-ohif into the build folder: OHIF version, rewrite level, rewritten files.
INSTALL_STAMP = ".archive-ohif-install.json"

INDEX = "index.html"


class ViewerBuildError(Exception):
    """The OHIF build does not look like the one this module knows how to rebase."""


_PUBLIC_URL = re.compile(r"window\.PUBLIC_URL\s*=\s*'/'")
_ROOT_ATTRIBUTE = re.compile(r'(\s(?:src|href|content)=")/(?!/)')
#: The web app manifest's link, unless it says already how the manifest is fetched.
_MANIFEST_LINK = re.compile(r'<link(?![^>]*\scrossorigin)(?=[^>]*\srel="manifest")')
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

    The manifest link gets ``crossorigin="use-credentials"``: browsers fetch a web app manifest
    without cookies unless told so, and the viewer's files are only for a logged-in user, so
    every load of the viewer had its manifest refused (401, twice per load in Chromium: two
    authorization checks the door could not keep, and a console error).
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
    text = _MANIFEST_LINK.sub('<link crossorigin="use-credentials"', text)
    return _ROOT_ATTRIBUTE.sub(lambda m: m.group(1) + root, text)
