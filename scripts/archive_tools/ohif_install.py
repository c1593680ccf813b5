"""Turn the npm package's OHIF build into one the archive serves under any URL root.

``@ohif/app`` ships ``dist/`` built for ``/``: webpack's runtime in the app bundle and in each
worker bundle says ``__webpack_require__.p = "/"``, so chunks, workers and WebAssembly would be
fetched from the site root. We never rebuild OHIF; instead this module copies the pristine
``dist/`` into the install folder and rewrites, each rewrite checked:

* webpack's public path → ``window.PUBLIC_URL`` in a page (which ``index.html`` sets to the
  viewer root, see ``archive_tools.ohif_index.rebase_index_html``), the worker script's own
  folder in a worker;
* the microscopy viewer's ``import('/dicom-microscopy-viewer/…')`` → below ``PUBLIC_URL``;
* onnxruntime-web's loader: a ``__filename`` left unguarded by the OHIF build, which can throw
  while the app starts and leave a blank page (a fix, not a rebase);
* stylesheets' ``url(/font.woff2)`` → relative to the stylesheet;
* ``manifest.json`` icons → relative to the manifest;
* ``init-service-worker.js`` → a script that only unregisters OHIF service workers, and
  ``sw.js`` removed (see ``ohif-config/README.md``, "Service worker").

The result no longer names any root, so ``index.html`` and ``app-config.js`` are all the archive
adapts per request, and one install serves ``/ohif/`` and ``/t/<tenant>/ohif/`` alike. A rewrite
whose pattern is missing raises :class:`InstallError` naming the file: an OHIF upgrade that
changes the build fails here, not as a blank page in a browser. A stamp in the install folder
makes a re-run with the same OHIF version and rewrite rules instant.

Run by ``scripts/install-ohif`` as ``python -m archive_tools.ohif_install``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .ohif_index import INSTALL_STAMP, ViewerBuildError, rebase_index_html

log = logging.getLogger(__name__)

#: Bump when a rewrite changes: installs stamped with another level are rebuilt.
PATCH_LEVEL = 3
STAMP = INSTALL_STAMP

PUBLIC_PATH_MARKER = "/* webpack/runtime/publicPath */"
PUBLIC_PATH_BUILT = '__webpack_require__.p = "/";'
PUBLIC_PATH_RUNTIME = (
    '__webpack_require__.p = (typeof window === "object" && window.PUBLIC_URL) || '
    'self.location.pathname.replace(/[^/]*$/, ""); /* regional-archive: root-independent */'
)

MICROSCOPY_BUILT = "window.browserImportFunction('/dicom-microscopy-viewer/"
MICROSCOPY_RUNTIME = "window.browserImportFunction(window.PUBLIC_URL + 'dicom-microscopy-viewer/"

#: onnxruntime-web's Emscripten loaders as OHIF 3.12 bundles them: webpack folded the guard
#: ``typeof __filename < "u"`` to ``true`` but kept ``__filename``, a ReferenceError in a browser
#: whenever ``document.currentScript`` is null when the module runs, which depends on the order
#: chunks arrive in and, when it bites during start-up, leaves a blank page (seen on reloads).
FILENAME_BUILT = "true&&(e=e||__filename)"
FILENAME_RUNTIME = 'true&&(e=e||(typeof __filename<"u"?__filename:void 0))'

#: Root-absolute references that may stay: the OIDC silent-refresh page (a default of OHIF's
#: optional OpenID Connect login, which we do not configure).
IGNORED_ROOT_REFERENCES = frozenset({"silent-refresh.html"})

SERVICE_WORKER_SCRIPT = """\
// Replaced by the regional archive's install-ohif: the archive serves OHIF without a service
// worker (content-hashed bundles are cached by the browser's HTTP cache; index.html and
// app-config.js are revalidated, so an OHIF upgrade shows on the next load). This script only
// removes service workers that an earlier OHIF under this root may have registered.
if ('serviceWorker' in navigator) {
  const scope = new URL(window.PUBLIC_URL || '/', window.location.href).href;
  navigator.serviceWorker.getRegistrations().then(registrations => {
    for (const registration of registrations) {
      if (registration.scope.startsWith(scope)) {
        registration.unregister();
      }
    }
  });
}
"""


class InstallError(Exception):
    """The OHIF build is not what the rewrites expect; the message names the file."""


# --- pure rewrites --------------------------------------------------------------------------


def patch_public_path(text: str, name: str) -> str:
    """Make webpack's runtime public path independent of the URL root (one per bundle)."""
    count = text.count(PUBLIC_PATH_BUILT)
    if count != 1:
        raise InstallError(
            f"{name}: expected exactly one {PUBLIC_PATH_BUILT!r} in its webpack runtime, "
            f"found {count}"
        )
    return text.replace(PUBLIC_PATH_BUILT, PUBLIC_PATH_RUNTIME)


def patch_microscopy_import(text: str, name: str) -> str:
    """Load the microscopy viewer below the viewer root instead of the site root."""
    count = text.count(MICROSCOPY_BUILT)
    if count != 1:
        raise InstallError(f"{name}: expected exactly one {MICROSCOPY_BUILT!r}, found {count}")
    return text.replace(MICROSCOPY_BUILT, MICROSCOPY_RUNTIME)


def patch_filename_guard(text: str, name: str) -> str:
    """Put back the ``typeof __filename`` guard webpack folded away (see FILENAME_BUILT)."""
    if FILENAME_BUILT not in text:
        raise InstallError(
            f"{name}: expected {FILENAME_BUILT!r} (onnxruntime-web's loader); if OHIF fixed it, "
            "remove this rewrite"
        )
    return text.replace(FILENAME_BUILT, FILENAME_RUNTIME)


_CSS_ROOT_URL = re.compile(r"""url\((["']?)/(?!/)""")


def rebase_stylesheet(text: str) -> str:
    """``url(/x.woff2)`` → ``url(x.woff2)``: resolved against the stylesheet, which the
    archive serves from the viewer root."""
    return _CSS_ROOT_URL.sub(lambda m: f"url({m.group(1)}", text)


def rebase_manifest(text: str, name: str = "manifest.json") -> str:
    """Web app manifest icons: ``/assets/x.png`` → ``assets/x.png`` (relative to the manifest)."""
    try:
        manifest = json.loads(text)
        icons = manifest["icons"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InstallError(f"{name}: not a web app manifest with icons ({exc})") from exc
    if not icons or not all(str(icon.get("src", "")).startswith("/assets/") for icon in icons):
        raise InstallError(f"{name}: expected every icon under /assets/")
    for icon in icons:
        icon["src"] = icon["src"].lstrip("/")
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def check_index_html(text: str, name: str = "index.html") -> None:
    """The archive rebases index.html per request; make sure it will be able to."""
    try:
        rebase_index_html(text, "/ohif/")
    except ViewerBuildError as exc:
        raise InstallError(f"{name}: {exc}") from exc


def root_references(text: str, top_level: Sequence[str]) -> set[str]:
    """Names of the build's top-level files and folders that ``text`` addresses from ``/``."""
    if not top_level:
        return set()
    names = "|".join(re.escape(n) for n in sorted(top_level, key=len, reverse=True))
    pattern = re.compile(rf"""(?:["'`]|url\()/({names})(?=["'`/?#)])""")
    return {m.group(1) for m in pattern.finditer(text)}


# --- the install ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallResult:
    target: Path
    rebuilt: bool
    patched: tuple[str, ...] = ()


def read_stamp(target: Path) -> dict[str, object] | None:
    try:
        data = json.loads((target / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def wanted_stamp(version: str) -> dict[str, object]:
    return {"ohif_version": version, "patch_level": PATCH_LEVEL}


def is_current(target: Path, version: str) -> bool:
    stamp = read_stamp(target) or {}
    return all(stamp.get(key) == value for key, value in wanted_stamp(version).items())


def package_version(package: Path) -> str:
    """The version in the npm package's package.json."""
    try:
        version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise InstallError(f"{package / 'package.json'}: cannot read the version ({exc})") from exc
    return str(version)


def install(package: Path, target: Path, version: str) -> InstallResult:
    """Build ``target`` from the unpacked npm package folder ``package`` (holding ``dist/``).

    Does nothing when ``target`` is stamped with this version and patch level. Otherwise the new
    install is assembled next to ``target`` and swapped in, so a failure leaves the previous one.
    """
    if is_current(target, version):
        return InstallResult(target=target, rebuilt=False)
    found = package_version(package)
    if found != version:
        raise InstallError(f"{package}: holds @ohif/app {found}, expected {version}")
    source = package / "dist"
    if not (source / "index.html").is_file():
        raise InstallError(f"{source}: no index.html; not an OHIF build")

    work = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        shutil.copytree(source, work, copy_function=_link_or_copy)
        patched = _patch(work)
        stamp = {**wanted_stamp(version), "rewritten": sorted(set(patched))}
        (work / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        _swap(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return InstallResult(target=target, rebuilt=True, patched=tuple(patched))


def _patch(build: Path) -> list[str]:
    """Apply every rewrite to the copy in ``build``; return the names of the files changed."""
    changed: list[str] = []

    def write(path: Path, text: str) -> None:
        _replace_text(path, text)
        changed.append(path.name)

    check_index_html((build / "index.html").read_text(encoding="utf-8"))

    # No service worker (sw.js precaches every file of the build, from the site root).
    if not (build / "init-service-worker.js").is_file():
        raise InstallError(f"{build}: no init-service-worker.js (index.html loads it)")
    write(build / "init-service-worker.js", SERVICE_WORKER_SCRIPT)
    (build / "sw.js").unlink(missing_ok=True)

    manifest = build / "manifest.json"
    write(manifest, rebase_manifest(manifest.read_text(encoding="utf-8"), manifest.name))

    scripts = sorted(build.glob("*.js"))
    texts = {p: p.read_text(encoding="utf-8") for p in scripts}
    runtimes = [p for p in scripts if PUBLIC_PATH_MARKER in texts[p]]
    if not any(p.name.startswith("app.bundle.") for p in runtimes):
        raise InstallError(f"{build}: no app.bundle.*.js with a webpack publicPath runtime")
    for path in runtimes:
        texts[path] = patch_public_path(texts[path], path.name)
    microscopy = [p for p in scripts if MICROSCOPY_BUILT in texts[p]]
    if len(microscopy) != 1:
        raise InstallError(
            f"{build}: expected one bundle importing {MICROSCOPY_BUILT!r}, "
            f"found {_names(p.name for p in microscopy) or 'none'}"
        )
    texts[microscopy[0]] = patch_microscopy_import(texts[microscopy[0]], microscopy[0].name)
    loaders = [p for p in scripts if FILENAME_BUILT in texts[p]]
    if not loaders:
        raise InstallError(f"{build}: no bundle holds {FILENAME_BUILT!r}; if OHIF fixed "
                           "onnxruntime-web's loader, remove this rewrite")
    for path in loaders:
        texts[path] = patch_filename_guard(texts[path], path.name)
    for path in sorted(set(runtimes) | set(microscopy) | set(loaders)):
        write(path, texts[path])

    for path in sorted(build.glob("*.css")):
        text = path.read_text(encoding="utf-8")
        texts[path] = rebase_stylesheet(text)
        if texts[path] != text:
            write(path, texts[path])

    # Whatever still names a file of the build from "/" would 404 under the viewer root.
    top_level = [p.name for p in build.iterdir() if not p.name.startswith(".")]
    for path, text in sorted(texts.items()):
        left = root_references(text, top_level) - IGNORED_ROOT_REFERENCES
        if left:
            raise InstallError(
                f"{path.name}: still addresses {_names(left)} from the site root; "
                "add a rewrite to archive_tools.ohif_install"
            )
    return changed


def _names(names: Iterable[str], limit: int = 5) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def _link_or_copy(src: str, dst: str) -> object:
    """Hard-link unchanged files from the unpacked package (48 MB, no need to copy twice)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` as a new file: the old name may be a hard link into the pristine package."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


def _swap(new: Path, target: Path) -> None:
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--package", type=Path, required=True,
                        help="the unpacked npm package folder (holds package.json and dist/)")
    parser.add_argument("--target", type=Path, required=True, help="the install folder to make")
    parser.add_argument("--version", required=True, help="the @ohif/app version expected")
    parser.add_argument("--check", action="store_true",
                        help="only tell whether --target is current (exit 0) or not (exit 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[install-ohif] %(message)s")
    if args.check:
        return 0 if is_current(args.target, args.version) else 3
    try:
        result = install(args.package, args.target, args.version)
    except InstallError as exc:
        log.error("cannot install OHIF %s: %s", args.version, exc)
        return 1
    if result.rebuilt:
        log.info("installed OHIF %s into %s (rewrote %s)", args.version, result.target,
                 ", ".join(result.patched))
    return 0


if __name__ == "__main__":
    sys.exit(main())
