"""The viewer's files in the run folder: index.html rebasing, app-config.js rendering, cache policy.

Moved with the viewer from the plugin to the launcher (nginx serves the files now); how nginx
serves them (deep links, 404s, headers, 304) is tested against a real nginx in
tests/integration/test_door.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from archive_config.errors import ConfigError
from archive_config.settings import ViewerSettings
from archive_door.errors import ViewerBuildError
from archive_door.viewer import (
    APP_CONFIG,
    IMMUTABLE,
    INDEX,
    REVALIDATE,
    REWRITTEN,
    cache_control,
    dicomweb_root,
    qido_root,
    render_app_config,
    rewritten_files,
    write_viewer_files,
)
from archive_tools.ohif_index import INSTALL_STAMP, rebase_index_html
from archive_tools.ohif_index import ViewerBuildError as OhifBuildError
from testkit.ohif_sample import OHIF_INDEX

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "ohif-config" / "app-config.js"

# --- names, types, caching -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.bundle.096daabbdde29bd851ab.js", IMMUTABLE),
        ("1927.bundle.be67b3aafe238ca9f191.js", IMMUTABLE),
        ("17dd54813d5acc10bf8f.wasm", IMMUTABLE),
        ("31fb9346313fc3740d7b.woff2", IMMUTABLE),
        ("app.bundle.css", REVALIDATE),  # same name in every OHIF version
        ("147.css", REVALIDATE),
        ("index.html", REVALIDATE),
        ("init-service-worker.js", REVALIDATE),
        ("ort-wasm-simd.wasm", REVALIDATE),
        ("favicon-16x16.png", REVALIDATE),
    ],
)
def test_only_content_hashed_names_are_immutable(name: str, expected: str) -> None:
    assert cache_control(name) == expected


def test_rewritten_hashed_files_are_cached_for_a_day_only() -> None:
    rewritten = frozenset({"app.bundle.096daabbdde29bd851ab.js", "app.bundle.css"})
    assert cache_control("app.bundle.096daabbdde29bd851ab.js", rewritten) == REWRITTEN
    assert cache_control("app.bundle.css", rewritten) == REVALIDATE
    assert cache_control("1403.bundle.e8fa44b49cecd08db139.js", rewritten) == IMMUTABLE


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(OHIF_INDEX)
    (root / "app.bundle.096daabbdde29bd851ab.js").write_text("/* app */")
    (root / "assets" / "favicon.ico").write_bytes(b"\x00\x01")
    (root / ".archive-ohif-install.json").write_text("{}")
    return root


# --- index.html ----------------------------------------------------------------------------


def test_rebase_index_html_points_everything_at_the_root() -> None:
    html = rebase_index_html(OHIF_INDEX, "/t/clinic-7/ohif/")
    assert html.count('window.PUBLIC_URL = "/t/clinic-7/ohif/"') == 2
    assert "window.PUBLIC_URL = '/'" not in html
    for ref in ('src="/t/clinic-7/ohif/app-config.js"',
                'src="/t/clinic-7/ohif/init-service-worker.js"',
                'src="/t/clinic-7/ohif/app.bundle.096daabbdde29bd851ab.js"',
                'href="/t/clinic-7/ohif/app.bundle.css"',
                'href="/t/clinic-7/ohif/manifest.json"',
                'href="/t/clinic-7/ohif/assets/favicon.ico"',
                'content="/t/clinic-7/ohif/assets/mstile-144x144.png"'):
        assert ref in html
    # Neither protocol-relative nor absolute URLs are touched.
    assert 'href="//fonts.example.org"' in html
    assert 'href="https://ohif.org/"' in html
    assert not re.search(r'(src|href)="/(?!t/clinic-7/ohif/|/)', html)


def test_rebased_index_html_fetches_the_manifest_with_the_session_cookie() -> None:
    # Browsers fetch a web app manifest without cookies unless the link says otherwise; the
    # viewer's files need a login, so the manifest was refused on every load.
    html = rebase_index_html(OHIF_INDEX, "/ohif/")
    assert '<link crossorigin="use-credentials" rel="manifest" href="/ohif/manifest.json"/>' in html
    assert html.count("crossorigin") == 1
    given = OHIF_INDEX.replace('<link rel="manifest"', '<link crossorigin="anonymous" rel="manifest"')
    assert 'crossorigin="use-credentials"' not in rebase_index_html(given, "/ohif/")


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ('src="/app-config.js"', "app-config.js"),
        ('src="/init-service-worker.js"', "service-worker"),
        ('<script defer="defer" src="/app.bundle.', "app bundle"),
        ('href="/app.bundle.css"', "stylesheet"),
        ("window.PUBLIC_URL = '/'", "PUBLIC_URL"),
    ],
)
def test_rebase_index_html_fails_loudly_on_an_unknown_build(remove: str, named: str) -> None:
    with pytest.raises(OhifBuildError, match=named):
        rebase_index_html(OHIF_INDEX.replace(remove, "x"), "/ohif/")


def test_rebase_index_html_refuses_an_already_rebased_page() -> None:
    with pytest.raises(OhifBuildError):
        rebase_index_html(rebase_index_html(OHIF_INDEX, "/ohif/"), "/ohif/")


# --- app-config.js -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "expected"),
    [("/ohif/", "/dicom-web"), ("/viewer/", "/dicom-web"), ("/t/clinic-7/ohif/", "/t/clinic-7/dicom-web")],
)
def test_dicomweb_is_the_viewer_roots_sibling(root: str, expected: str) -> None:
    assert dicomweb_root(root) == expected
    assert qido_root(root) == expected.replace("/dicom-web", "/api/dicom-web")


def _prelude_settings(script: str) -> dict[str, Any]:
    match = re.search(r"window\.ARCHIVE_VIEWER = Object\.freeze\((\{.*?\})\);", script, re.S)
    assert match, script[:400]
    return dict(json.loads(match.group(1)))


@pytest.mark.parametrize(("language", "ohif"), [("zh", "zh"), ("en", "en-US")])
def test_render_app_config_prelude_then_template(language: str, ohif: str) -> None:
    script = render_app_config("window.config = {};\n", root="/t/x/ohif/", default_language=language)
    assert _prelude_settings(script) == {
        "root": "/t/x/ohif/",
        "routerBasename": "/t/x/ohif",
        "dicomWebRoot": "/t/x/dicom-web",
        "qidoRoot": "/t/x/api/dicom-web",
        "defaultLanguage": ohif,
    }
    assert script.endswith("window.config = {};\n")


#: Runs an app-config.js in Node with the browser globals it touches; prints window.config.
_NODE_HARNESS = r"""
const fs = require('fs');
const [script, href, stored, cookie] = process.argv.slice(1);
const storage = new Map(stored ? [['i18nextLng', stored]] : []);
global.window = {
  location: new URL(href),
  localStorage: {
    getItem: k => (storage.has(k) ? storage.get(k) : null),
    setItem: (k, v) => storage.set(k, String(v)),
  },
};
global.document = { cookie };
new Function('window', 'document', fs.readFileSync(script, 'utf8'))(global.window, global.document);
const config = window.config;
process.stdout.write(JSON.stringify({
  routerBasename: config.routerBasename,
  defaultDataSourceName: config.defaultDataSourceName,
  sources: config.dataSources.map(s => [s.sourceName, s.configuration]),
  language: storage.get('i18nextLng') ?? null,
}));
"""


def _run_in_node(tmp_path: Path, script: str, href: str, stored: str = "", cookie: str = "") -> Any:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/setup installs npm, which brings it)")
    path = tmp_path / "app-config.js"
    path.write_text(script)
    out = subprocess.run([node, "-e", _NODE_HARNESS, str(path), href, stored, cookie],
                         check=True, capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def test_shipped_template_points_ohif_at_same_origin_dicomweb(tmp_path: Path) -> None:
    script = render_app_config(TEMPLATE.read_text(), root="/t/clinic-7/ohif/", default_language="zh")
    result = _run_in_node(tmp_path, script, "https://pacs.example.org/t/clinic-7/ohif/viewer?x=1")
    assert result["routerBasename"] == "/t/clinic-7/ohif"
    assert result["defaultDataSourceName"] == "dicomweb"
    [(name, source)] = result["sources"]
    assert name == "dicomweb"
    for key in ("wadoRoot", "wadoUriRoot"):
        assert source[key] == "https://pacs.example.org/t/clinic-7/dicom-web"
    assert source["qidoRoot"] == "https://pacs.example.org/t/clinic-7/api/dicom-web"
    assert source["imageRendering"] == "wadors"


@pytest.mark.parametrize(
    ("href", "stored", "cookie", "expected"),
    [
        ("http://h/ohif/", "", "", "zh"),  # first visit: the archive's default
        ("http://h/ohif/viewer?lng=en", "", "", None),  # ?lng= decides; OHIF stores it
        ("http://h/ohif/", "en", "", "en"),  # an earlier choice stays
        ("http://h/ohif/", "", "a=b; i18next=en-US", None),  # so does OHIF's cookie
    ],
)
def test_default_language_only_for_a_browser_that_has_not_chosen(
    tmp_path: Path, href: str, stored: str, cookie: str, expected: str | None
) -> None:
    script = render_app_config(TEMPLATE.read_text(), root="/ohif/", default_language="zh")
    assert _run_in_node(tmp_path, script, href, stored, cookie)["language"] == expected



# --- the run folder's viewer files -----------------------------------------------------------


def _viewer(build: Path, app_config: Path, root: str = "/ohif/") -> ViewerSettings:
    return ViewerSettings(root=root, directory=str(build), app_config=str(app_config),
                          default_language="en")


def test_write_viewer_files_rebases_index_and_renders_app_config(build: Path, tmp_path: Path) -> None:
    (build / APP_CONFIG).write_text("window.config = { dataSources: ['cloudfront'] };")
    target = tmp_path / "run" / "ohif"
    served = write_viewer_files(_viewer(build, TEMPLATE, "/t/x/ohif/"), target)
    assert served == build.resolve()
    index = (target / INDEX).read_text()
    assert 'window.PUBLIC_URL = "/t/x/ohif/"' in index
    assert 'src="/t/x/ohif/app-config.js"' in index
    script = (target / APP_CONFIG).read_text()
    assert "cloudfront" not in script  # the build's own app-config.js is never used
    assert _prelude_settings(script)["qidoRoot"] == "/t/x/api/dicom-web"
    assert _prelude_settings(script)["dicomWebRoot"] == "/t/x/dicom-web"
    assert _prelude_settings(script)["defaultLanguage"] == "en-US"
    assert (build / INDEX).read_text() == OHIF_INDEX  # the build is not touched


def test_write_viewer_files_resolves_a_linked_build(build: Path, tmp_path: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(build)
    assert write_viewer_files(_viewer(link, TEMPLATE), tmp_path / "out") == build.resolve()


def test_write_viewer_files_names_the_key_of_what_is_missing(build: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Archive.Viewer.AppConfig"):
        write_viewer_files(_viewer(build, tmp_path / "nope.js"), tmp_path / "out")
    with pytest.raises(ConfigError, match="Archive.Viewer.Directory"):
        write_viewer_files(_viewer(tmp_path / "none", TEMPLATE), tmp_path / "out")


def test_write_viewer_files_refuses_a_build_it_does_not_know(build: Path, tmp_path: Path) -> None:
    (build / INDEX).write_text("<html>something else</html>")
    with pytest.raises(ViewerBuildError):
        write_viewer_files(_viewer(build, TEMPLATE), tmp_path / "out")


def test_rewritten_files_come_from_the_install_stamp(build: Path) -> None:
    assert rewritten_files(build) == frozenset()  # "{}"
    (build / INSTALL_STAMP).write_text(json.dumps(
        {"ohif_version": "3.12.10", "patch_level": 2,
         "rewritten": ["app.bundle.096daabbdde29bd851ab.js"]}))
    assert rewritten_files(build) == {"app.bundle.096daabbdde29bd851ab.js"}
    (build / INSTALL_STAMP).write_text("not json")
    assert rewritten_files(build) == frozenset()
