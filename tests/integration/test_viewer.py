"""The OHIF viewer as a person meets it: served by the archive at /ohif/, opened in Chromium.

HTTP checks first (deep links, every file index.html names, our app-config.js), then a CT study
stored over STOW-RS is opened in headless Chromium, driven through the DevTools protocol: the
tests wait for the viewport's canvas to hold an image rather than sleeping, save screenshots
under the artifacts folder, and check the pixels of the viewports in the screenshot.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from urllib.parse import quote
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image, ImageStat
from pydicom import Dataset
from pydicom.filewriter import dcmwrite

from testkit.devtools import Chromium, Page
from archive_tools.synthetic import PatientInfo, StudyInfo, ct_volume
from testkit.stack import Stack

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

ROOT = "/ohif/"
VIEWPORT = {"width": 1600, "height": 1000}
RENDER_TIMEOUT = 45.0


# --- plain HTTP ----------------------------------------------------------------------------


class _References(HTMLParser):
    """The ``src`` and ``href`` attributes of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _assert_rebased_index(response: requests.Response) -> None:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-cache"
    html = response.text
    assert 'window.PUBLIC_URL = "/ohif/"' in html
    assert f'src="{ROOT}app-config.js"' in html
    assert f'<script defer="defer" src="{ROOT}app.bundle.' in html
    assert 'src="/app' not in html and 'href="/app' not in html


@pytest.mark.parametrize(
    "path",
    [
        "/ohif/",
        "/ohif",
        "/ohif/viewer?StudyInstanceUIDs=1.2.3",
        "/ohif/viewer?StudyInstanceUIDs=1.2.3&SeriesInstanceUIDs=1.2.3.4",
        "/ohif/viewer/dicomweb?StudyInstanceUIDs=1.2.3&hangingProtocolId=mpr",
        "/ohif/viewer/1.2.840.113619.2.55.3",
        "/ohif/index.html",
    ],
)
def test_deep_links_and_reloads_answer_the_rebased_index(
    archive: Stack, http: requests.Session, path: str
) -> None:
    _assert_rebased_index(http.get(archive.url + path, timeout=30))


def test_every_file_index_html_names_is_served(archive: Stack, http: requests.Session) -> None:
    index = http.get(f"{archive.url}{ROOT}viewer/dicomweb", timeout=30)
    parser = _References()
    parser.feed(index.text)
    local = [u for u in parser.urls if u.startswith("/") and not u.startswith("//")]
    assert len(local) >= 10, parser.urls
    for url in local:
        assert url.startswith(ROOT), url
        # stream: the app bundle is 15 MB; its status and headers are what matter here
        with http.get(archive.url + url, timeout=60, stream=True) as response:
            assert response.status_code == 200, url
            if ".bundle." in url and url.endswith(".js"):
                assert response.headers["Content-Type"].startswith("application/javascript")
                # install-ohif rewrote the app bundle: cached for a day, not for a year
                assert response.headers["Cache-Control"] == "public, max-age=86400", url
            if url.endswith(".css"):
                assert response.headers["Content-Type"].startswith("text/css")


def test_app_config_is_ours(archive: Stack, http: requests.Session) -> None:
    response = http.get(f"{archive.url}{ROOT}app-config.js", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert response.headers["Cache-Control"] == "no-cache"
    script = response.text
    assert '"dicomWebRoot": "/dicom-web"' in script
    assert '"qidoRoot": "/api/dicom-web"' in script
    assert '"routerBasename": "/ohif"' in script
    assert '"defaultLanguage": "zh"' in script
    assert "cloudfront" not in script  # the npm build's demo servers


def test_bundles_and_stylesheets_are_gzipped(archive: Stack, http: requests.Session) -> None:
    with http.get(f"{archive.url}{ROOT}app.bundle.css", timeout=30, stream=True,
                  headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") == "gzip"


@pytest.mark.parametrize(
    "path",
    ["app.bundle.0000000000000000dead.js", "assets/missing.png", ".archive-ohif-install.json",
     "sw.js"],
)
def test_missing_assets_and_internals_are_404(
    archive: Stack, http: requests.Session, path: str
) -> None:
    response = http.get(f"{archive.url}{ROOT}{path}", timeout=30)
    assert response.status_code == 404, response.text[:300]


# --- a CT study, stored over STOW-RS -------------------------------------------------------


PATIENT = PatientInfo("欧阳^娜娜", "VIEWER-0001", "19800101", "F")


@dataclass(frozen=True)
class Study:
    study_uid: str
    series_uids: tuple[str, ...]
    accession: str


def _stow(archive: Stack, datasets: Sequence[Dataset]) -> None:
    """STOW-RS (PS3.18 10.5): one multipart/related request per series."""
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for ds in datasets:
        part = io.BytesIO()
        dcmwrite(part, ds, enforce_file_format=True)
        body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        body.write(part.getvalue())
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    response = requests.post(
        f"{archive.url}/dicom-web/studies",
        data=body.getvalue(),
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                 "Accept": "application/dicom+json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text[:500]
    failed = response.json().get("00081198", {}).get("Value")  # FailedSOPSequence
    assert not failed, failed


@pytest.fixture(scope="module")
def ct_study(archive: Stack) -> Study:
    """A chest CT volume for MPR, and a short second series to filter by."""
    study = StudyInfo.synthetic("胸部CT增强扫描", seed=0)
    volume = ct_volume(slices=80, rows=256, columns=256, patient=PATIENT, study=study)
    scout = ct_volume(slices=12, rows=128, columns=128, patient=PATIENT, study=study,
                      series_number=3, series_description="薄层 scout")
    _stow(archive, volume)
    _stow(archive, scout)
    return Study(study.uid, (str(volume[0].SeriesInstanceUID), str(scout[0].SeriesInstanceUID)),
                 study.accession)


# --- headless Chromium over the DevTools protocol ------------------------------------------


def _wait(page: Page, expression: str, what: str, timeout: float = RENDER_TIMEOUT) -> Any:
    """Poll a JavaScript expression until it is truthy; its value is returned."""
    try:
        return page.wait_for(expression, timeout, interval=0.25)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; page says: {page.text()[:500]!r}; "
                             f"errors: {page.errors()[:5]}") from None


def _screenshot(page: Page) -> Image.Image:
    return Image.open(io.BytesIO(page.screenshot())).convert("RGB")


#: A returning user: OHIF's first-visit tour and investigational-use banner are acknowledged,
#: so they do not cover the viewport in screenshots. The language is left alone.
_RETURNING_USER = """
try {
  localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));
  localStorage.setItem('investigationalUseDialog',
                       JSON.stringify({expiryDate: '2999-01-01T00:00:00.000Z'}));
} catch (e) {}
"""

#: Per cornerstone canvas: its box on the page and how many grey levels its centre holds.
_VIEWPORTS = """
(() => [...document.querySelectorAll(
    '[data-cy="viewport-grid"] canvas.cornerstone-canvas')].map(canvas => {
  const box = canvas.getBoundingClientRect();
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  let levels = 0;
  if (ctx && canvas.width > 8 && canvas.height > 8) {
    const w = Math.floor(canvas.width / 2), h = Math.floor(canvas.height / 2);
    const data = ctx.getImageData(Math.floor(w / 2), Math.floor(h / 2), w, h).data;
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4) seen.add(data[i]);
    levels = seen.size;
  }
  return {x: box.x, y: box.y, width: box.width, height: box.height, levels};
}))()
"""


#: Every volume in cornerstone's cache has all its slices (MPR streams them in after the first
#: picture; until then sagittal and coronal views hold grey bands).
_VOLUMES_LOADED = """
(() => { const volumes = window.cornerstone ? window.cornerstone.cache.getVolumes() : [];
  return volumes.length > 0 && volumes.every(v => v.loadStatus && v.loadStatus.loaded); })()
"""
#: Resolves after the browser has painted twice more: a render that was scheduled has happened.
_PAINTED = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


def _rendered(count: int) -> str:
    """JavaScript: the viewports once ``count`` of them show an image, else null."""
    return (f"(() => {{ const v = {_VIEWPORTS}; "
            f"return v.length >= {count} && v.every(x => x.levels > 20) ? v : null; }})()")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Chromium]:
    browser = Chromium(tmp_path_factory.mktemp("chromium-profile"),
                       artifacts_dir / "viewer-chromium.log", width=VIEWPORT["width"],
                       height=VIEWPORT["height"], network=True, keep_events=None)
    try:
        browser.tab.call("Page.addScriptToEvaluateOnNewDocument", source=_RETURNING_USER)
        yield browser
    finally:
        browser.stop()


@pytest.fixture
def page(chromium: Chromium, archive: Stack) -> Page:
    """The tab, as a browser that has never visited the archive (no stored language), logged
    in as the test administrator (a session cookie, as the login page leaves it)."""
    chromium.tab.call("Storage.clearDataForOrigin", origin=archive.url, storageTypes="all")
    if archive.security_enabled:
        chromium.tab.set_cookie(archive.url, "archive_session", archive.session_cookie())
    return chromium.tab


def _viewer_url(archive: Stack, study: Study, extra: str = "", route: str = "viewer") -> str:
    return f"{archive.url}{ROOT}{route}?StudyInstanceUIDs={study.study_uid}{extra}"


def _assert_shows_an_image(shot: Image.Image, viewport: dict[str, float], name: str) -> None:
    """The centre of the viewport, cut from the screenshot, holds a picture, not a flat fill."""
    x, y, w, h = viewport["x"], viewport["y"], viewport["width"], viewport["height"]
    crop = shot.crop((int(x + w / 4), int(y + h / 4), int(x + 3 * w / 4), int(y + 3 * h / 4)))
    grey = crop.convert("L")
    levels = len(grey.getcolors(256) or [])
    stddev = ImageStat.Stat(grey).stddev[0]
    assert levels > 30 and stddev > 15, f"{name}: viewport looks blank ({levels} levels, σ={stddev:.1f})"


def _save(shot: Image.Image, artifacts_dir: Path, name: str) -> Path:
    path = artifacts_dir / name
    shot.save(path)
    log.info("screenshot %s", path)
    return path


def test_ct_opens_by_url_in_the_default_language(
    page: Page, archive: Stack, ct_study: Study, artifacts_dir: Path
) -> None:
    page.open(_viewer_url(archive, ct_study))
    viewports = _wait(page, _rendered(1), "the CT to render")
    shot = _screenshot(page)
    _save(shot, artifacts_dir, "viewer-ct-zh.png")
    for viewport in viewports:
        _assert_shows_an_image(shot, viewport, "axial CT")
    text = page.text()
    assert "检查" in text  # the study panel, in Chinese (Archive.Viewer.DefaultLanguage)
    assert "Studies" not in text
    assert "胸部增强 纵隔窗" in text  # the series description, UTF-8 from the archive
    assert page.evaluate("localStorage.getItem('i18nextLng')") == "zh"
    # Everything came from below the viewer root or from the archive's DICOMweb, and nothing
    # failed: a reference the install left pointing at "/" would show up here as a 404.
    responses = [(status, url) for status, url in page.responses() if url.startswith(archive.url)]
    assert len(responses) > 20
    for status, url in responses:
        path = url[len(archive.url):]
        assert path.startswith((ROOT, "/dicom-web/", "/api/dicom-web/")), url
        assert status < 400, (status, url)


def test_english_with_lng_and_the_choice_sticks(
    page: Page, archive: Stack, ct_study: Study, artifacts_dir: Path
) -> None:
    # Also a nested client-side route, as after a reload: /ohif/viewer/<data source>?…
    page.open(_viewer_url(archive, ct_study, "&lng=en", route="viewer/dicomweb"))
    viewports = _wait(page, _rendered(1), "the CT to render")
    shot = _screenshot(page)
    _save(shot, artifacts_dir, "viewer-ct-en.png")
    for viewport in viewports:
        _assert_shows_an_image(shot, viewport, "axial CT")
    assert "Studies" in page.text()
    assert "检查" not in page.text()
    # Reopened without ?lng=: OHIF remembers the choice; the archive's default does not override.
    page.open(_viewer_url(archive, ct_study))
    _wait(page, _rendered(1), "the CT to render again")
    assert "Studies" in page.text()


def test_study_list_searches_chinese_names(page: Page, archive: Stack,
                                           ct_study: Study) -> None:
    page.open(f"{archive.url}{ROOT}?patientName={quote('欧阳')}")
    text = _wait(page, f"document.body.innerText.includes({json.dumps(ct_study.accession)})"
                       " && document.body.innerText", "the study in the list")
    assert "欧阳, 娜娜" in text  # the name, decoded from UTF-8 DICOM PN
    assert "胸部CT增强扫描" in text  # StudyDescription: includefield=00081030,00080060 honoured
    assert "检查列表" in text  # the study list, in Chinese
    page.open(f"{archive.url}{ROOT}?patientName={quote('无此患者')}")
    _wait(page, "document.body.innerText.includes('没有数据')", "an empty list")
    assert ct_study.accession not in page.text()


def test_series_filter_by_url(page: Page, archive: Stack, ct_study: Study) -> None:
    thumbnails = "document.querySelectorAll('[data-cy=\"study-browser-thumbnail\"]').length"
    page.open(_viewer_url(archive, ct_study))
    _wait(page, _rendered(1), "the CT to render")
    assert _wait(page, f"{thumbnails} >= 2 && {thumbnails}", "both series' thumbnails") == 2
    page.open(_viewer_url(archive, ct_study, f"&SeriesInstanceUIDs={ct_study.series_uids[1]}"))
    _wait(page, _rendered(1), "the filtered series to render")
    assert page.evaluate(thumbnails) == 1
    assert "薄层 scout" in page.text()
    assert "胸部增强 纵隔窗" not in page.text()


def test_mpr_of_the_ct_volume(
    page: Page, archive: Stack, ct_study: Study, artifacts_dir: Path
) -> None:
    volume = f"&SeriesInstanceUIDs={ct_study.series_uids[0]}"
    # From the layout menu, as a radiologist would (OHIF offers MPR for reconstructable volumes).
    page.open(_viewer_url(archive, ct_study, volume))
    _wait(page, _rendered(1), "the CT to render")
    page.click(*_wait(page, _centre('[data-cy="Layout"]'), "the layout button"))
    # The item is named after its label: "MPR", or "多平面重建" in the Chinese UI.
    page.click(*_wait(page, _centre('[data-cy="MPR"], [data-cy="多平面重建"]'),
                      "MPR in the layout menu", 10))
    _wait(page, _rendered(3), "three MPR viewports after choosing MPR")

    # By URL, straight into OHIF's MPR hanging protocol: axial, sagittal and coronal.
    page.open(_viewer_url(archive, ct_study, volume + "&hangingProtocolId=mpr"))
    _wait(page, _rendered(3), "three MPR viewports to render")
    _wait(page, _VOLUMES_LOADED, "every slice of the volume")
    page.evaluate(_PAINTED, await_promise=True)
    viewports = _wait(page, _rendered(3), "three MPR viewports to render the whole volume")
    assert len(viewports) == 3
    shot = _screenshot(page)
    _save(shot, artifacts_dir, "viewer-ct-mpr.png")
    for name, viewport in zip(("axial", "sagittal", "coronal"), viewports):
        _assert_shows_an_image(shot, viewport, name)


def _centre(selector: str) -> str:
    """JavaScript: the centre of the first element matching ``selector``, else null."""
    return (f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
