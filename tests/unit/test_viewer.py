"""The viewer's pure parts: path resolution, index.html rebasing, app-config.js rendering."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from regional_archive.errors import ConfigError, NotFound
from regional_archive.features import PluginContext
from regional_archive.http import Handler, Request
from regional_archive.settings import parse_settings
from regional_archive.viewer import (
    IMMUTABLE,
    INSTALL_STAMP,
    REVALIDATE,
    REWRITTEN,
    ViewerBuildError,
    ViewerFeature,
    ViewerSite,
    cache_control,
    content_type,
    dicomweb_root,
    qido_root,
    rebase_index_html,
    render_app_config,
    resolve,
    rewritten_files,
)

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


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.js", "application/javascript; charset=utf-8"),
        ("a.wasm", "application/wasm"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.woff2", "font/woff2"),
        ("a.png", "image/png"),
        ("a.unknownext", "application/octet-stream"),
    ],
)
def test_content_type(name: str, expected: str) -> None:
    assert content_type(Path(name)) == expected


# --- resolve -------------------------------------------------------------------------------


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(OHIF_INDEX)
    (root / "app.bundle.096daabbdde29bd851ab.js").write_text("/* app */")
    (root / "assets" / "favicon.ico").write_bytes(b"\x00\x01")
    (root / ".archive-ohif-install.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def test_resolve_files(build: Path) -> None:
    assert resolve(build, "/app.bundle.096daabbdde29bd851ab.js").name.startswith("app.bundle")
    assert resolve(build, "assets/favicon.ico") == (build / "assets" / "favicon.ico").resolve()


@pytest.mark.parametrize(
    "relative",
    ["", "/", "viewer", "/viewer", "viewer/dicomweb", "viewer/dicomweb/", "localbasic",
     "viewer/1.2.840.113619.2.55.3", "segmentation/x"],
)
def test_client_side_routes_fall_back_to_index(build: Path, relative: str) -> None:
    assert resolve(build, relative) == build.resolve() / "index.html"


@pytest.mark.parametrize(
    "relative",
    ["app.bundle.0000000000000000dead.js", "assets/missing.png", "x.css", "viewer/x.json",
     "../secret.txt", "/../secret.txt", "assets/../../secret.txt", ".archive-ohif-install.json",
     "assets/.hidden", "a\\..\\secret.txt"],
)
def test_missing_assets_hidden_files_and_escapes_are_not_found(build: Path, relative: str) -> None:
    with pytest.raises(NotFound):
        resolve(build, relative)


def test_symlink_out_of_the_build_is_refused(build: Path) -> None:
    (build / "escape.txt").symlink_to(build.parent / "secret.txt")
    with pytest.raises(NotFound):
        resolve(build, "escape.txt")


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
    with pytest.raises(ViewerBuildError, match=named):
        rebase_index_html(OHIF_INDEX.replace(remove, "x"), "/ohif/")


def test_rebase_index_html_refuses_an_already_rebased_page() -> None:
    with pytest.raises(ViewerBuildError):
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


# --- serving -------------------------------------------------------------------------------


def _site(build: Path, app_config: Path) -> ViewerSite:
    return ViewerSite(build=build, root="/ohif/", app_config=app_config, default_language="zh")


def test_site_answers_index_for_deep_links(build: Path, tmp_path: Path) -> None:
    site = _site(build, TEMPLATE)
    for relative in ("", "viewer", "viewer/dicomweb", "index.html"):
        response = site.answer(relative)
        assert response.status == 200
        assert response.content_type.startswith("text/html")
        assert response.headers["Cache-Control"] == REVALIDATE
        assert b'src="/ohif/app-config.js"' in response.body


def test_site_renders_app_config_instead_of_the_builds(build: Path) -> None:
    (build / "app-config.js").write_text("window.config = { dataSources: ['cloudfront'] };")
    response = _site(build, TEMPLATE).answer("app-config.js")
    assert response.content_type.startswith("application/javascript")
    assert response.headers["Cache-Control"] == REVALIDATE
    assert b"cloudfront" not in response.body
    assert b"window.ARCHIVE_VIEWER" in response.body


def test_site_serves_files_with_their_cache_policy(build: Path) -> None:
    response = _site(build, TEMPLATE).answer("app.bundle.096daabbdde29bd851ab.js")
    assert response.body == b"/* app */"
    assert response.headers["Cache-Control"] == IMMUTABLE


def test_site_reads_the_rewritten_files_from_the_install_stamp(build: Path) -> None:
    assert rewritten_files(build) == frozenset()  # "{}"
    (build / INSTALL_STAMP).write_text(json.dumps(
        {"ohif_version": "3.12.10", "patch_level": 2,
         "rewritten": ["app.bundle.096daabbdde29bd851ab.js"]}))
    assert rewritten_files(build) == {"app.bundle.096daabbdde29bd851ab.js"}
    response = _site(build, TEMPLATE).answer("app.bundle.096daabbdde29bd851ab.js")
    assert response.headers["Cache-Control"] == REWRITTEN
    (build / INSTALL_STAMP).write_text("not json")
    assert rewritten_files(build) == frozenset()


def test_site_names_the_key_when_the_template_is_missing(build: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Archive.Viewer.AppConfig"):
        _site(build, tmp_path / "nope.js").answer("app-config.js")


def test_site_refuses_a_build_it_does_not_know(build: Path) -> None:
    (build / "index.html").write_text("<html>something else</html>")
    with pytest.raises(ViewerBuildError):
        _site(build, TEMPLATE).answer("viewer")


class _Host:
    def __init__(self) -> None:
        self.routes: list[tuple[Sequence[str], str, Handler]] = []

    def add_route(self, methods: Sequence[str], uri_regex: str, handler: Handler) -> None:
        self.routes.append((methods, uri_regex, handler))

    def rest_get_json(self, uri: str) -> Any:
        return None


def test_feature_registers_one_route_for_the_root(build: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_settings({"Archive": {"StateDirectory": "/s", "Viewer": {
        "Root": "/t/x/ohif/", "Directory": str(build), "AppConfig": str(TEMPLATE)}}})
    host = _Host()
    context = PluginContext(settings=settings, host=host, log=logging.getLogger("test"),
                            enabled_features=("viewer",))
    ViewerFeature().register(context)
    [(methods, regex, handler)] = host.routes
    assert list(methods) == ["GET"]
    for path in ("/t/x/ohif", "/t/x/ohif/", "/t/x/ohif/viewer/dicomweb"):
        assert re.fullmatch(regex, path)
    for path in ("/t/x/ohifx", "/ohif/", "/t/x/dicom-web/studies"):
        assert not re.fullmatch(regex, path)
    response = handler(Request(method="GET", path="/t/x/ohif/viewer", query={"StudyInstanceUIDs": "1"}))
    assert b'window.PUBLIC_URL = "/t/x/ohif/"' in response.body
    assert not caplog.records


def test_feature_logs_a_missing_build(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_settings({"Archive": {"StateDirectory": "/s", "Viewer": {
        "Directory": str(tmp_path / "none"), "AppConfig": str(tmp_path / "none.js")}}})
    context = PluginContext(settings=settings, host=_Host(), log=logging.getLogger("test"),
                            enabled_features=("viewer",))
    with caplog.at_level(logging.ERROR):
        ViewerFeature().register(context)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "viewer build not found" in messages
    assert "Archive.Viewer.AppConfig" in messages
