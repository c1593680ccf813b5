"""The whole archive as ``scripts/serve`` runs it, for tests and the benchmark, on free ports.

``Stack(workdir, overrides={file: {key: value}}).start()`` writes a configuration folder from the
shipped ``config/`` merged with the overrides (:func:`testkit.orthanc_process.render_config`),
gives every listening port a free one (the door's HTTP and HTTPS, Orthanc's internal HTTP, the
API service, DICOM), and runs ``python -m archive_door run`` in a session of its own, so a
Ctrl-C in the terminal reaches only pytest, and :meth:`Stack.stop` can clean up the whole group.
The launcher execs supervisord, so the launcher's PID *is* supervisord's.

Readiness is polled, never slept for: the door's ``/api/health`` must answer (200 or 503) and
supervisord must report every program ``RUNNING``. ``ARCHIVE_PLATFORM`` chooses the Orthanc
(:mod:`testkit.platform`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import requests

from testkit import platform as platforms
from testkit.orthanc_process import REPO, CONFIG_DIR, StartupFailed, deep_merge, free_port, render_config

__all__ = ["Stack", "StartupFailed"]

Overrides = Mapping[str, Mapping[str, Any]]

#: The override that makes a test archive require credentials, as the shipped one does.
SECURED: Mapping[str, Mapping[str, Any]] = {"archive.json": {"Archive": {"Security": {"Enabled": True}}}}

#: Calling AE titles of the tests' DICOM clients (DCMTK, pynetdicom), known to every test archive.
TEST_CALLING_AETS = ("DIMSETEST", "QUICKACK", "PYNETDICOM", "GATE_TEST", "LOADTEST")

#: The administrator every test archive gets (Stack.provision_administrator).
ADMIN_USERNAME = "test-admin"
ADMIN_PASSWORD = "Yue-Pian-Shen-2026"


def supervisor_proxy(socket_path: Path) -> Any:
    """An XML-RPC client of supervisord's control socket (its ``supervisor.*`` namespace)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


@dataclass
class Stack:
    """One archive: Orthanc, the API service, the workers and the door, under supervisord."""

    workdir: Path
    overrides: Overrides = field(default_factory=dict)
    aet: str = "ARCHIVE"
    config_source: Path = CONFIG_DIR
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    orthanc_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: Requests to the door as the test administrator (an admin API key once the archive runs;
    #: no credential when Archive.Security.Enabled is false). Tests that check refusals use
    #: plain ``requests`` or a session of their own.
    http: requests.Session = field(default_factory=requests.Session)
    #: ``Authorization`` of an administrator who exists already: a second archive of a region
    #: whose control database (``Archive.Database.Control``) another test archive made and
    #: provisioned. :meth:`start` then uses it for :attr:`http` instead of making one.
    administrator: str | None = None

    # --- where things are -------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def launcher_log(self) -> Path:
        return self.workdir / "launcher.log"

    @property
    def https_enabled(self) -> bool:
        door = self.overrides.get("archive.json", {}).get("Archive", {}).get("Door", {})
        return bool(door.get("Https", {}).get("Enabled", False))

    @property
    def url(self) -> str:
        """The door, over HTTP."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def orthanc_url(self) -> str:
        """Orthanc's internal HTTP port: for a test's set-up only (it needs :attr:`orthanc_auth`)."""
        return f"http://127.0.0.1:{self.orthanc_port}"

    @property
    def orthanc_auth(self) -> tuple[str, str]:
        data = json.loads((self.state_dir / "internal-credential.json").read_text())
        return str(data["username"]), str(data["password"])

    @property
    def security_enabled(self) -> bool:
        """Whether this archive requires credentials. Test archives do not unless their
        overrides say ``Archive.Security.Enabled: true`` (the shipped default): the tests of
        security (test_security, test_door, test_dicom_security) ask for it; the others test
        other things through an open door (issue 8 is open until they all run secured:
        :attr:`http` carries an admin key already, some still call plain ``requests``)."""
        security = self.overrides.get("archive.json", {}).get("Archive", {}).get("Security", {})
        return bool(security.get("Enabled", False))

    @property
    def pid(self) -> int | None:
        """The launcher's PID, which is supervisord's after the exec."""
        return self.process.pid if self.process is not None else None

    def log_text(self, program: str = "orthanc") -> str:
        """A program's log (``orthanc``, ``api``, ``worker-1``, ``door``, ``door-access``,
        ``supervisord``) or ``launcher`` (what the launcher printed before the exec)."""
        path = self.launcher_log if program == "launcher" else self.data_dir / "logs" / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- supervisord ------------------------------------------------------------------------

    def supervisor(self) -> Any:
        return supervisor_proxy(self.run_dir / "supervisor.sock")

    def programs(self) -> dict[str, dict[str, Any]]:
        """Program name → supervisord's process info (``statename``, ``pid``, ``start`` …)."""
        infos = cast(list[dict[str, Any]], self.supervisor().supervisor.getAllProcessInfo())
        return {info["name"]: info for info in infos}

    def program_pid(self, name: str) -> int:
        return int(self.supervisor().supervisor.getProcessInfo(name)["pid"])

    # --- life -------------------------------------------------------------------------------

    def write_config(self) -> Path:
        door: dict[str, Any] = {"HttpPort": self.http_port}
        if self.https_enabled:
            door["Https"] = {"Port": self.https_port}
        ports: dict[str, dict[str, Any]] = {
            "orthanc.json": {"HttpPort": self.orthanc_port, "DicomPort": self.dicom_port,
                             "DicomAet": self.aet},
            "archive.json": {"Archive": {"Door": door, "Api": {"Port": self.api_port},
                                         "Security": {"Enabled": self.security_enabled}}},
        }
        merged: dict[str, Mapping[str, Any]] = dict(ports)
        for name, extra in self.overrides.items():
            merged[name] = deep_merge(merged.get(name, {}), extra)
        return render_config(self.config_dir, merged, self.config_source)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(platforms.current().orthanc_env())
        return env

    def start(self, timeout: float = 90.0) -> "Stack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        command = [sys.executable, "-m", "archive_door", "run", "--config", str(config),
                   "--data", str(self.data_dir)]
        with self.launcher_log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, cwd=REPO,
                                            env=self.environment(), start_new_session=True)
        try:
            self.wait_ready(timeout)
            if self.security_enabled and self.administrator is not None:
                self.http.headers["Authorization"] = self.administrator
            elif self.security_enabled:
                self.provision_administrator()
            self.add_test_callers()
        except BaseException:
            self.stop()
            raise
        return self

    def auth_headers(self) -> dict[str, str]:
        """The test administrator's credential as headers, for clients that are not
        :attr:`http` (dicomweb-client, Chromium); empty when security is off."""
        value = self.http.headers.get("Authorization")
        return {"Authorization": str(value)} if value else {}

    def login(self, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> requests.Session:
        """A browser-like session: logged in by ``POST /api/auth/login``, with the session
        cookie and the CSRF token header the console would send."""
        session = requests.Session()
        answer = session.post(self.url + "/api/auth/login", timeout=30,
                              json={"username": username, "password": password})
        answer.raise_for_status()
        session.headers["X-CSRF-Token"] = answer.json()["csrfToken"]
        return session

    def session_cookie(self, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> str:
        """The value of a fresh ``archive_session`` cookie, for a browser under test."""
        return str(self.login(username, password).cookies["archive_session"])

    def provision_administrator(self) -> None:
        """The first administrator, made as a sysadmin would (``scripts/create-admin``), then an
        API key of the admin role for :attr:`http` (a key, not a session: it needs no CSRF token
        and does not expire while a long module runs)."""
        made = subprocess.run(
            [sys.executable, "-m", "archive_auth.first_admin", "--config", str(self.config_dir),
             "--data", str(self.data_dir), "--username", ADMIN_USERNAME,
             "--display-name", "测试管理员", "--password-stdin"],
            input=ADMIN_PASSWORD.encode(), capture_output=True, cwd=REPO,
            env={**self.environment(), "ARCHIVE_HOME": str(REPO)}, timeout=60)
        if made.returncode != 0:
            error = made.stderr.decode(errors="replace")
            raise StartupFailed(f"create-admin failed: {error}", error, made.returncode)
        token = requests.post(self.url + "/api/auth/token", timeout=30, json={
            "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        token.raise_for_status()
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        key = requests.post(self.url + "/api/api-keys", headers=bearer, timeout=30, json={
            "name": "test-suite", "permissions": ["admin"], "tenants": None})
        key.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {key.json()['key']}"

    def add_test_callers(self) -> None:
        """The calling AEs the tests use for C-GET and C-MOVE, which only known AEs may do
        (an archive restarted on its data knows them already)."""
        known = {str(m["name"]) for m in self.http.get(self.url + "/api/modalities",
                                                        timeout=30).json()}
        for aet in TEST_CALLING_AETS:
            name = f"test-{aet.lower().replace('_', '-')}"
            if name not in known:
                self.add_modality(name, aet, 104)

    def add_modality(self, name: str, aet: str, port: int,
                     operations: tuple[str, ...] = ("echo", "store", "find", "get", "move")) -> None:
        """A known modality on 127.0.0.1, made as the console makes one (``/api/modalities``)."""
        made = self.http.post(self.url + "/api/modalities", timeout=30, json={
            "name": name, "aet": aet, "host": "127.0.0.1", "port": port,
            "allowedOperations": list(operations)})
        if made.status_code not in (200, 201) or not made.json().get("orthancSynced"):
            raise StartupFailed(f"modality {name}: {made.status_code} {made.text}", made.text, None)

    def remove_modality(self, name: str) -> None:
        self.http.delete(f"{self.url}/api/modalities/{name}", timeout=30)

    @contextmanager
    def known_modality(self, name: str, aet: str, port: int) -> Iterator[None]:
        """A move destination known for the block's duration."""
        self.add_modality(name, aet, port)
        try:
            yield
        finally:
            self.remove_modality(name)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the door's /api/health answers and every program is RUNNING."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise StartupFailed(f"the launcher exited with {code}", self.log_text("launcher"), code)
            try:
                states = {name: info["statename"] for name, info in self.programs().items()}
                r = requests.get(self.url + "/api/health", timeout=5)
                last = f"health {r.status_code}, programs {states}"
                if r.status_code in (200, 503) and set(states.values()) == {"RUNNING"}:
                    return
            except (OSError, requests.RequestException, xmlrpc.client.Fault) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise StartupFailed(f"the archive was not ready in {timeout:.0f} s ({last})",
                            self.log_text("launcher") + self.log_text("supervisord"), None)

    def health(self) -> requests.Response:
        return requests.get(self.url + "/api/health", timeout=10)

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        """Until ``/api/health`` is 200 (every service ok); its body."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.health()
                if r.status_code == 200:
                    return cast(dict[str, Any], r.json())
                last = r.text[:500]
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.2)
        raise AssertionError(f"/api/health not ok in {timeout:.0f} s: {last}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM to supervisord (it stops every program in order), SIGKILL to the group if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
