"""Time for OHIF in headless Chromium to show the first image of a CT (REQUIREMENTS M13: < 1 s).

The same OHIF build is served by both servers: ours by its door (nginx) at ``/ohif/`` (index.html
rebased, app-config.js rendered, long-lived caching of content-hashed bundles), vanilla by
Orthanc's stock ServeFolders plugin from a folder of links to the same build, holding the
index.html and app-config.js that ours serves; the only change is that vanilla's viewer sends
its searches to ``/dicom-web`` (it has no decoding route). ``/ohif/viewer`` is an extension-less
copy of index.html there, as ServeFolders has no fallback for a single-page app's routes.

A script injected before the page's own records, with ``performance.now()`` (milliseconds since
the navigation started), the first moment a cornerstone viewport's canvas holds an image rather
than a flat fill: on cornerstone's ``CORNERSTONE_IMAGE_RENDERED`` event, and by polling the
canvases every 40 ms in case the event is missed. Each run opens the study twice: with the
browser cache emptied ("cold": the whole app is downloaded) and again at once ("warm"). For the
warm load, Resource Timing also says when the first search, the series metadata and the first
frame had arrived, which shows where the time goes.

Our archive lets only a logged-in user open the viewer (issue 8): the browser holds the session
cookie a login gives (``archive_session``, :meth:`testkit.stack.Stack.session_cookie`), one for
the whole case, as a user who logged in once. Cookies do not tell ports apart, so before every
load the browser's cookies are cleared and the side's own set again (none for vanilla or an
archive with security off). The same case, *secured* against *open* (:mod:`.servers`), says what
authentication costs the first image (issue 8: ≤ 1.05×). Each load starts once the blank page
has replaced the last one: ``Page.navigate`` returns before that, and the last page went on
fetching frames, without its cookie once they were cleared (a storm of refused requests on the
secured side only).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from testkit.devtools import Chromium, DevToolsError
from .results import VIEWER_FIRST_IMAGE, Better, MetricSpec, Target
from .runner import CaseFailed
from .servers import OURS, VANILLA, Server, ServerError

#: The cookie of a browser session of our archive (docs/security.md).
SESSION_COOKIE: Final = "archive_session"
#: Cookies of each side of a case, by server name: cookie name → value.
Cookies = Mapping[str, Mapping[str, str]]

log = logging.getLogger(__name__)

ROOT: Final = "/ohif/"
SERVED_BY_OURS: Final = ("index.html", "app-config.js")
VANILLA_QIDO: Final = "/dicom-web"

#: Runs in every document before its own scripts.
HOOK: Final = r"""
(() => {
  try {
    localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));
    localStorage.setItem('investigationalUseDialog',
                         JSON.stringify({expiryDate: '2999-01-01T00:00:00.000Z'}));
  } catch (e) {}
  if (!location.pathname.includes('/ohif/') || window.__bench) return;  // once per document
  performance.setResourceTimingBufferSize(10000);  // OHIF loads hundreds of files
  const bench = window.__bench = {firstImage: null, how: null, renders: 0};
  const levels = canvas => {
    if (!canvas || canvas.width < 16 || canvas.height < 16) return 0;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    if (!ctx) return 0;
    const w = canvas.width >> 1, h = canvas.height >> 1;
    const px = ctx.getImageData(w >> 1, h >> 1, w, h).data;
    const seen = new Set();
    for (let i = 0; i < px.length; i += 12) seen.add(px[i]);
    return seen.size;
  };
  const check = how => {
    if (bench.firstImage !== null) return true;
    for (const canvas of document.querySelectorAll('canvas.cornerstone-canvas')) {
      if (levels(canvas) > 20) {
        bench.firstImage = performance.now();
        bench.how = how;
        return true;
      }
    }
    return false;
  };
  document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => {
    bench.renders += 1;
    check('event');
  }, true);
  const poll = () => { if (!check('poll')) setTimeout(poll, 40); };
  poll();
})();
"""

FIRST_IMAGE_JS: Final = "window.__bench && window.__bench.firstImage"

#: True once the blank page has replaced the last one (Page.navigate returns before that).
BLANK_JS: Final = "location.href === 'about:blank'"

#: When (ms since the navigation began) the first answer of each kind had arrived.
MILESTONES_JS: Final = r"""
(() => {
  const done = re => {
    const ends = performance.getEntriesByType('resource')
      .filter(r => re.test(r.name)).map(r => r.responseEnd);
    return ends.length ? Math.min(...ends) : null;
  };
  return {search: done(/\/(studies|series)\?/), metadata: done(/\/metadata(\?|$)/),
          frame: done(/\/frames\//)};
})()
"""


def link_build(dist: Path, folder: Path) -> None:
    """``folder`` mirrors ``dist`` with symbolic links, except the files ours renders."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in dist.iterdir():
        if entry.name in SERVED_BY_OURS or entry.name.startswith("."):
            continue
        link = folder / entry.name
        if not link.exists():
            link.symlink_to(entry.resolve())


def vanilla_app_config(ours_app_config: str) -> str:
    """Our app-config.js with the viewer's searches sent to plain ``/dicom-web``."""
    return re.sub(r'("qidoRoot"\s*:\s*")[^"]*(")', rf"\g<1>{VANILLA_QIDO}\g<2>", ours_app_config)


def publish_for_vanilla(ours: Server, folder: Path) -> list[str]:
    """Copy what ours serves for index.html and app-config.js into vanilla's folder."""
    notes = []
    index = ours.get(ROOT + "index.html")
    config = ours.get(ROOT + "app-config.js")
    if index.status_code != 200 or config.status_code != 200:
        raise ServerError(f"ours does not serve {ROOT} (index {index.status_code}, "
                          f"app-config {config.status_code})")
    (folder / "index.html").write_bytes(index.content)
    (folder / "viewer").write_bytes(index.content)  # the route /ohif/viewer, as HTML
    patched = vanilla_app_config(config.text)
    if patched != config.text:
        notes.append("vanilla's OHIF sends QIDO-RS to /dicom-web (ours: its decoding route)")
    (folder / "app-config.js").write_text(patched)
    return notes


def _no_cookies() -> Cookies:
    return {}


@dataclass
class ViewerCase:
    """``cookies``: what the browser holds for each side (:data:`Cookies`); ``prefix``: of the
    case key, to tell the same case between other sides apart; ``ratio_target``: on the first
    image, cold and warm."""

    chromium: Chromium
    study_uid: str
    slices: int
    timeout: float = 90.0
    screenshots: Path | None = None
    scenario: str = "Viewer (OHIF)"
    repeatable: bool = True
    warmup: bool = True
    sides: tuple[str, str] = (OURS, VANILLA)
    cookies: Cookies = field(default_factory=_no_cookies)
    prefix: str = "viewer"
    ratio_target: Target | None = None
    _installed: bool = field(default=False, init=False)

    @property
    def key(self) -> str:
        return f"{self.prefix}/first-image"

    @property
    def label(self) -> str:
        return f"first image of a {self.slices}-slice CT, headless Chromium"

    @property
    def specs(self) -> Sequence[MetricSpec]:
        return (MetricSpec("first image, cold cache", "s", Better.LOWER,
                           target=VIEWER_FIRST_IMAGE, ratio_target=self.ratio_target),
                MetricSpec("first image, warm cache", "s", Better.LOWER,
                           target=VIEWER_FIRST_IMAGE, ratio_target=self.ratio_target),
                MetricSpec("warm: first search answered", "s", Better.LOWER),
                MetricSpec("warm: series metadata received", "s", Better.LOWER),
                MetricSpec("warm: first frame received", "s", Better.LOWER))

    def url(self, server: Server) -> str:
        return f"{server.url}{ROOT}viewer?StudyInstanceUIDs={self.study_uid}"

    def _open(self, server: Server, cold: bool) -> tuple[float, dict[str, float]]:
        page = self.chromium.tab
        if not self._installed:
            page.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
            self._installed = True
        page.navigate("about:blank")
        # The last page lives until the blank one replaces it, fetching frames all the while:
        # it would share this load's connections and, once its cookie is cleared below, send
        # requests the door refuses (a secured archive only). Wait until it is gone.
        try:
            page.wait_for(BLANK_JS, timeout=self.timeout, interval=0.02)
        except TimeoutError:
            raise CaseFailed(f"the last page was not replaced by about:blank in {self.timeout} s")
        if cold:
            page.call("Network.clearBrowserCache")
            page.call("Storage.clearDataForOrigin", origin=server.url, storageTypes="all")
        page.call("Network.clearBrowserCookies")
        for name, value in self.cookies.get(server.name, {}).items():
            page.set_cookie(server.url, name, value)
        page.events.clear()
        page.navigate(self.url(server))
        try:
            value = page.wait_for(FIRST_IMAGE_JS, timeout=self.timeout, interval=0.1)
        except TimeoutError:
            text = ""
            try:
                text = str(page.evaluate("document.body ? document.body.innerText : ''"))[:300]
            except DevToolsError:
                pass
            raise CaseFailed(f"no image in the viewport after {self.timeout} s; page says "
                             f"{text!r}; errors: {page.errors()[:3]}") from None
        milestones = page.evaluate(MILESTONES_JS) or {}
        return float(value) / 1000, {k: float(v) / 1000 for k, v in milestones.items()
                                     if v is not None}

    def run(self, server: Server) -> Mapping[str, Sequence[float]]:
        cold, _ = self._open(server, cold=True)
        warm, steps = self._open(server, cold=False)
        if self.screenshots is not None:
            self.screenshot(self.screenshots / f"{self.prefix.replace('/', '-')}-{server.name}.png")
        out = {"first image, cold cache": [cold], "first image, warm cache": [warm]}
        for key, name in (("search", "warm: first search answered"),
                          ("metadata", "warm: series metadata received"),
                          ("frame", "warm: first frame received")):
            if key in steps:
                out[name] = [steps[key]]
        return out

    def screenshot(self, path: Path) -> None:
        data = self.chromium.tab.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
