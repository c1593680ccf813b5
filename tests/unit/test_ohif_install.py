"""Making the npm OHIF build servable under any root: each rewrite, and the install as a whole."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from archive_tools import ohif_install
from archive_tools.ohif_install import (
    FILENAME_BUILT,
    FILENAME_RUNTIME,
    MICROSCOPY_BUILT,
    MICROSCOPY_RUNTIME,
    PUBLIC_PATH_BUILT,
    PUBLIC_PATH_RUNTIME,
    STAMP,
    InstallError,
    check_index_html,
    install,
    is_current,
    main,
    patch_filename_guard,
    patch_microscopy_import,
    patch_public_path,
    rebase_manifest,
    rebase_stylesheet,
    root_references,
)
from testkit.ohif_sample import OHIF_INDEX

VERSION = "3.12.10"

#: webpack's runtime as @ohif/app 3.12 ships it, shortened.
RUNTIME = (
    "/******/ \t/* webpack/runtime/publicPath */\n/******/ \t(() => {\n"
    f"/******/ \t\t{PUBLIC_PATH_BUILT}\n/******/ \t}})();\n"
)


# --- the rewrites --------------------------------------------------------------------------


def test_public_path_becomes_page_or_worker_relative() -> None:
    patched = patch_public_path(f"a\n{RUNTIME}b\n", "compute.bundle.x.js")
    assert PUBLIC_PATH_BUILT not in patched
    assert PUBLIC_PATH_RUNTIME in patched
    assert patched.startswith("a\n") and patched.endswith("b\n")


@pytest.mark.parametrize("copies", [0, 2])
def test_public_path_rewrite_names_the_file_when_the_build_differs(copies: int) -> None:
    with pytest.raises(InstallError, match=r"^app\.bundle\.x\.js: .*found " + str(copies)):
        patch_public_path(RUNTIME * copies, "app.bundle.x.js")


def test_public_path_rewrite_is_not_applied_twice() -> None:
    once = patch_public_path(RUNTIME, "a.js")
    with pytest.raises(InstallError):
        patch_public_path(once, "a.js")


def test_microscopy_viewer_is_imported_below_the_root() -> None:
    text = f"await {MICROSCOPY_BUILT}dicomMicroscopyViewer.min.js');"
    assert patch_microscopy_import(text, "x.js") == (
        f"await {MICROSCOPY_RUNTIME}dicomMicroscopyViewer.min.js');"
    )
    with pytest.raises(InstallError, match="x.js"):
        patch_microscopy_import("nothing", "x.js")


def test_onnxruntime_loader_gets_its_filename_guard_back() -> None:
    loader = 'var e=document.currentScript?document.currentScript.src:void 0;return  ' + FILENAME_BUILT
    patched = patch_filename_guard(loader + ",f()" + loader, "7431.bundle.x.js")
    assert FILENAME_BUILT not in patched
    assert patched.count(FILENAME_RUNTIME) == 2
    with pytest.raises(InstallError, match="7431.bundle.x.js: .*remove this rewrite"):
        patch_filename_guard("fixed upstream", "7431.bundle.x.js")


def test_stylesheet_urls_become_relative() -> None:
    css = ("@font-face{src:url(/31fb9346313fc3740d7b.woff2) format('woff2')}"
           'a{background:url("/assets/x.png")}b{background:url(//cdn.example.org/y.png)}'
           "c{background:url(data:image/png;base64,AAAA)}")
    assert rebase_stylesheet(css) == (
        "@font-face{src:url(31fb9346313fc3740d7b.woff2) format('woff2')}"
        'a{background:url("assets/x.png")}b{background:url(//cdn.example.org/y.png)}'
        "c{background:url(data:image/png;base64,AAAA)}"
    )


def test_manifest_icons_become_relative() -> None:
    manifest = {"name": "OHIF Viewer", "icons": [{"src": "/assets/a.png", "sizes": "36x36"}],
                "start_url": "./index.html"}
    rebased = json.loads(rebase_manifest(json.dumps(manifest)))
    assert rebased["icons"] == [{"src": "assets/a.png", "sizes": "36x36"}]
    assert rebased["start_url"] == "./index.html"


@pytest.mark.parametrize("text", ["[]", "{}", '{"icons": []}', '{"icons": [{"src": "x.png"}]}', "{"])
def test_manifest_of_another_shape_is_refused(text: str) -> None:
    with pytest.raises(InstallError, match="manifest.json"):
        rebase_manifest(text)


def test_root_references_finds_what_would_404_under_a_root() -> None:
    top_level = ["assets", "app-config.js", "31fb9346313fc3740d7b.woff2", "ort"]
    text = ("fetch('/assets/x.png'); load(\"/app-config.js\"); u = `/ort/`;"
            "css = 'url(/31fb9346313fc3740d7b.woff2)'; api('/api/health'); cdn('//assets/x');"
            "rel('./assets/y'); q('/ortho')")
    assert root_references(text, top_level) == {"assets", "app-config.js", "ort",
                                                "31fb9346313fc3740d7b.woff2"}
    assert root_references("url(/31fb9346313fc3740d7b.woff2)", top_level) == {
        "31fb9346313fc3740d7b.woff2"
    }
    assert root_references(text, []) == set()


def test_index_html_check_names_the_file() -> None:
    check_index_html(OHIF_INDEX)
    with pytest.raises(InstallError, match="^index.html: "):
        check_index_html("<html></html>")


# --- the install ---------------------------------------------------------------------------


def make_package(folder: Path, version: str = VERSION) -> Path:
    """An npm package folder shaped like @ohif/app's: package.json and dist/."""
    dist = folder / "dist"
    (dist / "assets").mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "@ohif/app", "version": version}))
    (dist / "index.html").write_text(OHIF_INDEX)
    (dist / "app.bundle.096daabbdde29bd851ab.js").write_text(
        f"{RUNTIME}async function m() {{ {MICROSCOPY_BUILT}dicomMicroscopyViewer.min.js'); }}\n"
        "const silent = '/silent-refresh.html';\n"
    )
    (dist / "compute.bundle.73440405025831e0e072.js").write_text(RUNTIME + "importScripts(x);\n")
    (dist / "1403.bundle.e8fa44b49cecd08db139.js").write_text("chunk();\n")
    (dist / "7431.bundle.b31ebb4a2625e89d864e.js").write_text(f"ort(() => {{ {FILENAME_BUILT} }});\n")
    (dist / "app.bundle.css").write_text("@font-face{src:url(/31fb9346313fc3740d7b.woff2)}")
    (dist / "31fb9346313fc3740d7b.woff2").write_bytes(b"wOF2")
    (dist / "manifest.json").write_text(json.dumps({"icons": [{"src": "/assets/a.png"}]}))
    (dist / "assets" / "a.png").write_bytes(b"\x89PNG")
    (dist / "init-service-worker.js").write_text("navigator.serviceWorker.register('/sw.js');")
    (dist / "sw.js").write_text("precache(['/app.bundle.096daabbdde29bd851ab.js', '/index.html']);")
    (dist / "dicom-microscopy-viewer").mkdir()
    (dist / "dicom-microscopy-viewer" / "dicomMicroscopyViewer.min.js").write_text("dmv();")
    return folder


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "package")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_install_rewrites_a_copy(package: Path, tmp_path: Path) -> None:
    pristine = _snapshot(package)
    target = tmp_path / "dist"
    result = install(package, target, VERSION)

    assert result.rebuilt
    assert _snapshot(package) == pristine, "the npm package must stay as published"
    app = (target / "app.bundle.096daabbdde29bd851ab.js").read_text()
    assert PUBLIC_PATH_RUNTIME in app and PUBLIC_PATH_BUILT not in app
    assert MICROSCOPY_RUNTIME in app
    assert PUBLIC_PATH_RUNTIME in (target / "compute.bundle.73440405025831e0e072.js").read_text()
    assert (target / "app.bundle.css").read_text() == "@font-face{src:url(31fb9346313fc3740d7b.woff2)}"
    assert json.loads((target / "manifest.json").read_text())["icons"] == [{"src": "assets/a.png"}]
    worker = (target / "init-service-worker.js").read_text()
    assert "unregister()" in worker and "register(" not in worker.replace("unregister(", "")
    assert not (target / "sw.js").exists()
    # index.html stays as built: the archive rebases it per request, to its configured root.
    assert (target / "index.html").read_text() == OHIF_INDEX
    assert (target / "dicom-microscopy-viewer" / "dicomMicroscopyViewer.min.js").read_text() == "dmv();"
    assert FILENAME_RUNTIME in (target / "7431.bundle.b31ebb4a2625e89d864e.js").read_text()
    assert is_current(target, VERSION)
    rewritten = {"app.bundle.096daabbdde29bd851ab.js", "app.bundle.css", "manifest.json",
                 "compute.bundle.73440405025831e0e072.js", "7431.bundle.b31ebb4a2625e89d864e.js",
                 "init-service-worker.js"}
    assert set(result.patched) == rewritten
    # The stamp tells the archive which content-hashed names it must not cache for a year.
    assert set(json.loads((target / STAMP).read_text())["rewritten"]) == rewritten


def test_unchanged_files_are_hard_links_and_rewritten_ones_are_not(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "dist"
    install(package, target, VERSION)
    chunk = "1403.bundle.e8fa44b49cecd08db139.js"
    assert os.path.samefile(package / "dist" / chunk, target / chunk)
    app = "app.bundle.096daabbdde29bd851ab.js"
    assert not os.path.samefile(package / "dist" / app, target / app)


def test_install_again_is_instant(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "dist"
    install(package, target, VERSION)
    before = _snapshot(target)
    started = time.monotonic()
    assert not install(package, target, VERSION).rebuilt
    assert time.monotonic() - started < 0.05
    assert _snapshot(target) == before


def test_a_new_patch_level_rebuilds(package: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dist"
    install(package, target, VERSION)
    monkeypatch.setattr(ohif_install, "PATCH_LEVEL", ohif_install.PATCH_LEVEL + 1)
    assert not is_current(target, VERSION)
    assert install(package, target, VERSION).rebuilt
    assert json.loads((target / STAMP).read_text())["patch_level"] == ohif_install.PATCH_LEVEL


def test_an_unstamped_folder_is_replaced(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "dist"
    (target / "old").mkdir(parents=True)  # e.g. the earlier layout: the package's dist as is
    assert install(package, target, VERSION).rebuilt
    assert not (target / "old").exists()
    assert not list(tmp_path.glob("dist.*")), "no temporary folders left behind"


def test_wrong_package_version_is_refused(tmp_path: Path) -> None:
    package = make_package(tmp_path / "package", version="3.11.0")
    with pytest.raises(InstallError, match="3.11.0, expected 3.12.10"):
        install(package, tmp_path / "dist", VERSION)


def test_a_failed_install_keeps_the_previous_one(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "dist"
    install(package, target, VERSION)
    before = _snapshot(target)
    # A future OHIF that loads a new file from the site root: refused, naming the file.
    chunk = package / "dist" / "1403.bundle.e8fa44b49cecd08db139.js"
    chunk.unlink()  # a new package, not an edit of the file the install links to
    chunk.write_text("load('/assets/new.png');")
    (target / STAMP).unlink()
    with pytest.raises(InstallError, match=r"^1403\.bundle\.e8fa44b49cecd08db139\.js: .*assets"):
        install(package, target, VERSION)
    after = _snapshot(target)
    del before[STAMP]
    assert after == before
    assert not list(tmp_path.glob("dist.*"))


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("compute.bundle.73440405025831e0e072.js", RUNTIME + RUNTIME, "compute.bundle"),
        ("app.bundle.096daabbdde29bd851ab.js", "no runtime", "app.bundle"),
        ("index.html", "<html></html>", "index.html"),
        ("manifest.json", "{}", "manifest.json"),
        ("7431.bundle.b31ebb4a2625e89d864e.js", "fixed()", "remove this rewrite"),
    ],
)
def test_an_unexpected_build_fails_naming_the_file(
    package: Path, tmp_path: Path, file: str, content: str, message: str
) -> None:
    (package / "dist" / file).write_text(content)
    with pytest.raises(InstallError, match=message):
        install(package, tmp_path / "dist", VERSION)


def test_command_line(package: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = ["--package", str(package), "--target", str(tmp_path / "dist"), "--version", VERSION]
    assert main([*args, "--check"]) == 3
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert main(["--package", str(package), "--target", str(tmp_path / "other"),
                 "--version", "9.9.9"]) == 1
    assert "expected 9.9.9" in caplog.text
