"""The servers of every comparison, and what the benchmark asks of them over REST.

*ours*: the whole archive exactly as ``scripts/serve`` runs it (``python -m archive_door run``
from the shipped ``config/``, :class:`testkit.stack.Stack`: nginx, Orthanc with our plugin, the
API service, a worker), on free ports. Clients reach it through its door, as in production.

*vanilla*: the same Orthanc binary, DICOMweb and GDCM plugins and configuration files (SQLite
index, filesystem storage, same storage and DICOM settings, ``TCP_NODELAY=1``), without the
Python plugin, nginx or services, on its own HTTP port. To give OHIF to both, vanilla also loads
Orthanc's stock ServeFolders plugin serving the same OHIF build (see :mod:`.viewer`).

Two more views of *ours* measure what the door and the API service cost (issue 6):

*door*: ours again, under the name the door-overhead cases give their first side;
*direct*: ours' Orthanc on its internal loopback port, with the internal credential, bypassing
nginx and the API service.

And what authentication and authorization cost (issue 8):

*secured*: ours again (``Archive.Security.Enabled`` true, as shipped), every request with a
credential, under the name the security cases give their first side;
*open*: a second whole archive, the same in every other respect, started with
``Archive.Security.Enabled`` false (:data:`OPEN_OVERRIDES`) and holding the same data.

Our archive refuses requests without a credential (issue 8), so every request the benchmark
sends to a door of ours carries one, as a real client's would: ``Authorization: Bearer`` with
the test administrator's API key (:meth:`testkit.stack.Stack.auth_headers`; none when security
is off), in :attr:`Server.headers`; browsers get a session cookie instead (:mod:`.viewer`).

Every :class:`Server` has a *public* URL (what clients use: DICOMweb, the viewer, QIDO) and an
*admin* URL and credential for the benchmark's own bookkeeping (``/statistics``, ``/changes``,
``/tools/lookup``, DELETE, ``/system``): Orthanc's administrative REST, which our door hides.
For vanilla both are its one HTTP port, without credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests

from testkit.orthanc_process import DROP, OrthancProcess, deep_merge
from testkit.stack import SECURED as SECURED_OVERRIDES, Stack

log = logging.getLogger(__name__)

PLUGINS_DIR: Final = Path("/usr/share/orthanc/plugins")
VANILLA_PLUGINS: Final = ("libOrthancDicomWeb.so", "libOrthancGdcm.so")
SERVE_FOLDERS: Final = "libServeFolders.so"
OURS: Final = "ours"
VANILLA: Final = "vanilla"
DOOR: Final = "door"
DIRECT: Final = "direct"
SECURED: Final = "secured"
OPEN: Final = "open"
#: The servers that hold data of their own for the ours/vanilla cases (door, direct and secured
#: are views of ours; open, started for the security cases only, has its own).
STORES: Final = (OURS, VANILLA)
#: The second archive of the security cases: ours with authentication and authorization off.
OPEN_OVERRIDES: Final = {"archive.json": {"Archive": {"Security": {"Enabled": False}}}}

Auth = tuple[str, str]


class ServerError(RuntimeError):
    pass


def _no_pids() -> dict[str, int]:
    return {}


@dataclass
class Server:
    """A running server: its public URL for clients, its admin REST for the benchmark.

    ``auth`` is the HTTP Basic credential a client must send to ``url`` (only the *direct*
    view needs one), ``headers`` what else every request to ``url`` carries (the Bearer API key
    of a door of ours with security on); ``pids`` says which process runs which program
    (``orthanc``, ``api``), for py-spy.
    """

    name: str
    url: str
    admin_url: str
    dicom_port: int
    aet: str
    auth: Auth | None = None
    admin_auth: Auth | None = None
    pids: Callable[[], Mapping[str, int]] = _no_pids
    headers: Mapping[str, str] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)
    admin: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.auth = self.auth
        self.session.headers.update(self.headers)
        self.admin.auth = self.admin_auth

    def view(self, name: str, url: str | None = None, auth: Auth | None = None,
             headers: Mapping[str, str] | None = None) -> "Server":
        """The same server under another name; at another ``url``, with that URL's ``auth``
        and ``headers`` (none unless given) instead of this one's."""
        if url is None:
            auth, headers = self.auth, self.headers
        return Server(name, url or self.url, self.admin_url, self.dicom_port, self.aet,
                      auth, self.admin_auth, self.pids, dict(headers or {}))

    def client_job(self) -> dict[str, Any]:
        """What a :mod:`.worker` job needs to reach ``url`` as this server's clients do."""
        return {"auth": list(self.auth) if self.auth else None, "headers": dict(self.headers)}

    def pid(self, program: str = "orthanc") -> int:
        try:
            return int(self.pids()[program])
        except (KeyError, OSError, ValueError) as error:
            raise ServerError(f"{self.name}: no pid for {program}: {error}") from error

    # --- public ----------------------------------------------------------------------------

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=kwargs.pop("timeout", 120), **kwargs)

    def get_json(self, path: str) -> Any:
        return _json(self.get(path), self.name, path)

    def answers(self, path: str) -> bool:
        try:
            return self.get(path).status_code == 200
        except requests.RequestException:
            return False

    # --- admin -----------------------------------------------------------------------------

    def admin_get_json(self, path: str) -> Any:
        return _json(self.admin.get(self.admin_url + path, timeout=120), self.name, path)

    def count_instances(self) -> int:
        return int(self.admin_get_json("/statistics")["CountInstances"])

    def count_studies(self) -> int:
        return int(self.admin_get_json("/statistics")["CountStudies"])

    def last_change(self) -> int:
        return int(self.admin_get_json("/changes?last")["Last"])

    def lookup(self, uid: str) -> list[dict[str, Any]]:
        response = self.admin.post(self.admin_url + "/tools/lookup", data=uid, timeout=60)
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
                    response = self.admin.delete(f"{self.admin_url}/studies/{match['ID']}",
                                                 timeout=600)
                    if response.status_code != 200:
                        raise ServerError(f"{self.name}: deleting study {uid} answered "
                                          f"{response.status_code}")
                    deleted += 1
        return deleted

    def versions(self) -> dict[str, Any]:
        """Orthanc's version and every loaded plugin's (admin REST); ours' platform too."""
        system = self.admin_get_json("/system")
        plugins = {}
        for name in self.admin_get_json("/plugins"):
            if name.endswith(".js"):  # "explorer.js": the plugins' Orthanc Explorer extensions
                continue
            info = self.admin_get_json(f"/plugins/{name}")
            plugins[name] = info.get("Version")
        out: dict[str, Any] = {"orthanc": system.get("Version"),
                               "database_version": system.get("DatabaseVersion"),
                               "plugins": plugins}
        response = self.get("/api/health")
        if response.status_code in (200, 503) and response.headers.get(
                "content-type", "").startswith("application/json"):
            health = response.json()
            out["archive"] = health.get("version")
            out["platform"] = health.get("platform")
            out["features"] = health.get("features")
            out["health"] = health.get("status")
        return out

    def close(self) -> None:
        self.session.close()
        self.admin.close()


def _json(response: requests.Response, name: str, path: str) -> Any:
    if response.status_code != 200:
        raise ServerError(f"{name}: GET {path} answered {response.status_code}")
    try:
        return response.json()
    except ValueError as error:
        raise ServerError(f"{name}: GET {path} did not answer JSON") from error


# --- ours: the whole archive ---------------------------------------------------------------


#: ``--without-dicom-audit``: ours without the DICOM audit's verbose Orthanc log, to tell what
#: authentication costs from what that log costs (docs/decisions.md, "The DICOM audit").
NO_DICOM_AUDIT: Final = {"archive.json": {"Archive": {"Dicom": {"Audit": {"Enabled": False}}}}}


def ours_stack(workdir: Path, *, dicom_audit: bool = True) -> Stack:
    """Ours as shipped; ``dicom_audit`` False: without :data:`NO_DICOM_AUDIT`'s key."""
    if dicom_audit:
        return Stack(workdir, overrides=SECURED_OVERRIDES)
    return Stack(workdir, overrides=deep_merge(SECURED_OVERRIDES, NO_DICOM_AUDIT))


def open_stack(workdir: Path) -> Stack:
    """The second archive of the security cases (:data:`OPEN_OVERRIDES`)."""
    return Stack(workdir, overrides=OPEN_OVERRIDES)


def stack_pids(stack: Stack) -> Callable[[], dict[str, int]]:
    def pids() -> dict[str, int]:
        return {name: int(info["pid"]) for name, info in stack.programs().items()
                if info.get("pid")}
    return pids


def start_ours(stack: Stack, timeout: float = 180.0, name: str = OURS) -> Server:
    """Start the whole archive; the server is its door (with the administrator's credential
    when security is on), its admin REST Orthanc's own port."""
    log.info("starting %s (door %d, Orthanc %d, API %d, DICOM %d) in %s", name, stack.http_port,
             stack.orthanc_port, stack.api_port, stack.dicom_port, stack.workdir)
    stack.start(timeout=timeout)
    stack.wait_healthy(timeout=timeout)
    return Server(name, stack.url, stack.orthanc_url, stack.dicom_port, stack.aet,
                  admin_auth=stack.orthanc_auth, pids=stack_pids(stack),
                  headers=stack.auth_headers())


def door_and_direct(ours: Server, stack: Stack) -> tuple[Server, Server]:
    """Ours through its door, and ours' Orthanc on its internal port with the credential."""
    return ours.view(DOOR), ours.view(DIRECT, stack.orthanc_url, stack.orthanc_auth)


# --- vanilla Orthanc -----------------------------------------------------------------------


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


def start_vanilla(process: OrthancProcess) -> Server:
    log.info("starting vanilla (HTTP %d, DICOM %d) in %s", process.http_port,
             process.dicom_port, process.workdir)
    process.start(timeout=120)

    def pids() -> dict[str, int]:
        return {} if process.pid is None else {"orthanc": process.pid}

    return Server(VANILLA, process.url, process.url, process.dicom_port, process.aet, pids=pids)
