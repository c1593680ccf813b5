"""The Orthanc platform the tests and the benchmark run on: Debian bookworm's or Debian trixie's.

Two platforms are supported (docs/architecture.md, decision 1): this machine's own Debian bookworm
packages (Orthanc 1.10.1, Python plugin 4.0, DICOMweb 1.7) and Debian trixie's (Orthanc 1.12.x,
Python plugin 5.0, DICOMweb 1.20), which ``scripts/install-trixie`` installs in a cached trixie
root and ``scripts/orthanc-trixie`` runs in place of ``/usr/sbin/Orthanc``. ``ARCHIVE_PLATFORM``
(``bookworm``, the default, or ``trixie``) chooses one for a test run; ``scripts/test`` runs the
integration suite once on each.

A :class:`Platform` says how to start its Orthanc (the command, the plugin's venv, the
environment to give it), where its plugins are, and which package versions it has, so that a
test that expects a platform's defect (a strict xfail) can name the platform it is expected on.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
#: Where Orthanc looks for the plugins ``config/orthanc.json`` lists, on both platforms.
PLUGIN_DIR: Final = Path("/usr/share/orthanc/plugins")
PLUGINS: Final = {"python": "libOrthancPython.so", "dicomWeb": "libOrthancDicomWeb.so",
                  "gdcm": "libOrthancGdcm.so"}
#: Debian package of each versioned component, as reported in :attr:`Platform.versions`.
PACKAGES: Final = {"orthanc": "orthanc", "pythonPlugin": "orthanc-python",
                   "dicomWeb": "orthanc-dicomweb", "gdcm": "orthanc-gdcm"}
TRIXIE_ROOT: Final = REPO / ".cache" / "trixie" / "root"
TRIXIE_VENV: Final = REPO / ".cache" / "trixie" / "venv"
TRIXIE_VERSIONS: Final = REPO / ".cache" / "trixie" / "versions.json"
TRIXIE_WRAPPER: Final = REPO / "scripts" / "orthanc-trixie"
DEFAULT: Final = "bookworm"


class PlatformError(RuntimeError):
    """The platform asked for is unknown or not installed."""


@dataclass(frozen=True)
class Platform:
    """One Orthanc platform: how to run its Orthanc, and what it is made of.

    ``root`` is the host folder that Orthanc's ``/`` is (``/`` for the native platform), so
    that :meth:`host_path` finds on the host a file named in Orthanc's configuration.
    ``versions`` holds the Debian package versions (keys of :data:`PACKAGES`).
    """

    name: str
    orthanc_command: tuple[str, ...]
    plugin_venv: Path
    root: Path
    versions: Mapping[str, str]

    @property
    def plugins(self) -> dict[str, Path]:
        """The C++ and Python plugins' ``.so`` paths, as Orthanc sees them."""
        return {key: PLUGIN_DIR / name for key, name in PLUGINS.items()}

    def host_path(self, path: Path | str) -> Path:
        """``path`` (absolute, as Orthanc sees it) on the host."""
        return self.root / Path(path).relative_to("/")

    def version(self, key: str) -> tuple[int, ...]:
        """A package's upstream version as numbers: ``"1.12.7+dfsg-4"`` → ``(1, 12, 7)``."""
        upstream = self.versions[key].split(":")[-1].split("+")[0].split("-")[0]
        return tuple(int(part) for part in upstream.split(".") if part.isdigit())

    def orthanc_env(self) -> dict[str, str]:
        """What a process runner adds to Orthanc's environment (see ``docs/configuration.md``).

        ``ARCHIVE_ORTHANC`` is the command for runners that take a single executable (the
        launcher's supervisord program); ``ARCHIVE_PLUGIN_VENV`` (and the older ``ARCHIVE_VENV``
        that ``orthanc-plugins/entry.py`` read first) is the plugin's virtual environment, built
        with the platform's own Python.
        """
        return {"ARCHIVE_PLATFORM": self.name, "ARCHIVE_ORTHANC": self.orthanc_command[0],
                "ARCHIVE_PLUGIN_VENV": str(self.plugin_venv),
                "ARCHIVE_VENV": str(self.plugin_venv)}


def _dpkg_versions(root: Path) -> dict[str, str]:
    command = ["dpkg-query", "-W", "-f=${Package} ${Version}\\n", *PACKAGES.values()]
    if root != Path("/"):
        command[1:1] = [f"--admindir={root / 'var/lib/dpkg'}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    installed = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return {key: installed.get(package, "") for key, package in PACKAGES.items()}


@functools.cache
def bookworm() -> Platform:
    """This machine's own Debian packages, Orthanc at ``/usr/sbin/Orthanc``."""
    return Platform(name="bookworm", orthanc_command=("/usr/sbin/Orthanc",),
                    plugin_venv=REPO / ".venv", root=Path("/"), versions=_dpkg_versions(Path("/")))


@functools.cache
def trixie() -> Platform:
    """Debian trixie's packages in the root ``scripts/install-trixie`` made."""
    if not (TRIXIE_ROOT / "usr/sbin/Orthanc").is_file() or not TRIXIE_VERSIONS.is_file():
        raise PlatformError(f"no trixie root at {TRIXIE_ROOT}: run scripts/install-trixie")
    recorded = json.loads(TRIXIE_VERSIONS.read_text())
    versions = {key: str(recorded.get(key, "")) for key in PACKAGES}
    return Platform(name="trixie", orthanc_command=(str(TRIXIE_WRAPPER),),
                    plugin_venv=TRIXIE_VENV, root=TRIXIE_ROOT, versions=versions)


FACTORIES: Final = {"bookworm": bookworm, "trixie": trixie}


def name(env: Mapping[str, str] | None = None) -> str:
    """The platform ``ARCHIVE_PLATFORM`` names (``bookworm`` when unset), without looking at it."""
    chosen = (os.environ if env is None else env).get("ARCHIVE_PLATFORM", "") or DEFAULT
    if chosen not in FACTORIES:
        raise PlatformError(f"ARCHIVE_PLATFORM={chosen!r}: expected one of "
                            f"{', '.join(FACTORIES)}")
    return chosen


def current(env: Mapping[str, str] | None = None) -> Platform:
    """The platform ``ARCHIVE_PLATFORM`` names, with its versions (it must be installed)."""
    return FACTORIES[name(env)]()


def is_bookworm() -> bool:
    """For xfail conditions: a defect of Orthanc 1.10.1 / plugin 4.0 / DICOMweb 1.7."""
    return name() == "bookworm"


def is_trixie() -> bool:
    """For xfail conditions: a defect of Orthanc 1.12.x / plugin 5.0 / DICOMweb 1.20."""
    return name() == "trixie"
