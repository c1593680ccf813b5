"""The two servers of every comparison, and what the benchmark asks of them over REST.

*ours*: the shipped ``config/`` with our Python plugin and all its default features, exactly as
``scripts/serve`` runs it (only the ports and data folder differ).

*vanilla*: the same configuration files and the same Orthanc binary, DICOMweb and GDCM plugins
(SQLite index, filesystem storage, same storage and DICOM settings, ``TCP_NODELAY=1``), without
the Python plugin. To give OHIF to both, vanilla also loads Orthanc's stock ServeFolders plugin
serving the same OHIF build (see :mod:`.viewer`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests

from testkit.orthanc_process import DROP, OrthancProcess

log = logging.getLogger(__name__)

PLUGINS_DIR: Final = Path("/usr/share/orthanc/plugins")
VANILLA_PLUGINS: Final = ("libOrthancDicomWeb.so", "libOrthancGdcm.so")
SERVE_FOLDERS: Final = "libServeFolders.so"
OURS: Final = "ours"
VANILLA: Final = "vanilla"


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """A running Orthanc and a keep-alive session to its REST API."""

    name: str
    process: OrthancProcess
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def dicom_port(self) -> int:
        return self.process.dicom_port

    @property
    def aet(self) -> str:
        return self.process.aet

    @property
    def pid(self) -> int:
        pid = self.process.pid
        if pid is None:
            raise ServerError(f"{self.name} is not running")
        return pid

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=kwargs.pop("timeout", 120), **kwargs)

    def get_json(self, path: str) -> Any:
        response = self.get(path)
        if response.status_code != 200:
            raise ServerError(f"{self.name}: GET {path} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise ServerError(f"{self.name}: GET {path} did not answer JSON") from error

    def answers(self, path: str) -> bool:
        try:
            return self.get(path).status_code == 200
        except requests.RequestException:
            return False

    def count_instances(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])

    def count_studies(self) -> int:
        return int(self.get_json("/statistics")["CountStudies"])

    def last_change(self) -> int:
        return int(self.get_json("/changes?last")["Last"])

    def lookup(self, uid: str) -> list[dict[str, Any]]:
        response = self.session.post(self.url + "/tools/lookup", data=uid, timeout=60)
        if response.status_code != 200:
            raise ServerError(f"{self.name}: lookup of {uid} answered {response.status_code}")
        found = response.json()
        return list(found) if isinstance(found, list) else []

    def delete_studies(self, study_uids: Iterable[str]) -> int:
        """Delete these studies where present; return how many were deleted."""
        deleted = 0
        for uid in study_uids:
            for match in self.lookup(uid):
                if match.get("Type") == "Study":
                    response = self.session.delete(f"{self.url}/studies/{match['ID']}",
                                                   timeout=600)
                    if response.status_code != 200:
                        raise ServerError(f"{self.name}: deleting study {uid} answered "
                                          f"{response.status_code}")
                    deleted += 1
        return deleted

    def versions(self) -> dict[str, Any]:
        """Orthanc's version and every loaded plugin's, as the server reports them."""
        system = self.get_json("/system")
        plugins = {}
        for name in self.get_json("/plugins"):
            if name.endswith(".js"):  # "explorer.js": the plugins' Orthanc Explorer extensions
                continue
            info = self.get_json(f"/plugins/{name}")
            plugins[name] = info.get("Version")
        out: dict[str, Any] = {"orthanc": system.get("Version"),
                               "database_version": system.get("DatabaseVersion"),
                               "plugins": plugins}
        if self.answers("/api/health"):
            health = self.get_json("/api/health")
            out["regional_archive"] = health.get("plugin", {}).get("version")
            out["features"] = health.get("features")
        return out

    def stop(self) -> None:
        self.session.close()
        self.process.stop()


def ours(workdir: Path) -> OrthancProcess:
    return OrthancProcess(workdir, new_session=True)


def vanilla(workdir: Path, ohif_folder: Path | None) -> OrthancProcess:
    plugins = [str(PLUGINS_DIR / p) for p in VANILLA_PLUGINS]
    orthanc: dict[str, Any] = {"Name": "Vanilla Orthanc", "Plugins": plugins,
                               "PythonScript": DROP, "PythonVerbose": DROP}
    if ohif_folder is not None:
        plugins.append(str(PLUGINS_DIR / SERVE_FOLDERS))
        orthanc["ServeFolders"] = serve_folders_config(ohif_folder)
    return OrthancProcess(workdir, overrides={"archive.json": DROP, "orthanc.json": orthanc},
                          ready_path="/system", ready_statuses=(200,), new_session=True)


def serve_folders_config(folder: Path) -> dict[str, Any]:
    """ServeFolders at its best for a single-page app.

    ``AllowCache``: no ``no-store`` headers. ``GenerateETag`` off: the plugin cannot answer 304,
    so an MD5 of every answer would be pure cost. The empty extension maps to HTML so that the
    extension-less route ``/ohif/viewer`` (a copy of index.html, :mod:`.viewer`) renders; that is
    why no folder on the path may hold a dot (the plugin takes the last dot of the whole path).
    """
    if "." in str(folder):
        raise ServerError(f"{folder}: ServeFolders needs a path without '.' for extension-less "
                          "files to be served as HTML")
    return {
        "Folders": {"/ohif": str(folder)},
        "AllowCache": True,
        "GenerateETag": False,
        "Extensions": {"": "text/html", "ico": "image/x-icon", "txt": "text/plain",
                       "webapp": "application/json", "mjs": "application/javascript"},
    }


def start(name: str, process: OrthancProcess) -> Server:
    log.info("starting %s (HTTP %d, DICOM %d) in %s", name, process.http_port,
             process.dicom_port, process.workdir)
    process.start(timeout=120)
    return Server(name, process)
