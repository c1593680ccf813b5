"""A real Orthanc (shipped config, our plugin) with the API service and workers beside it.

What the launcher will do, done by hand so these tests need only Orthanc: run the migrations,
write the internal credential (``<StateDirectory>/internal-credential.json``) and make Orthanc
require it (``AuthenticationEnabled``, ``RegisteredUsers``), then start
``python -m archive_api`` and ``python -m archive_worker`` as the supervisord programs do.
Readiness is polled.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from archive_api.orthanc import InternalCredential
from archive_config.config_check import Configuration, load
from archive_auth.service import AuthService
from archive_config.settings import control_database_url, state_database_url
from archive_state.db import make_engine, migrate
from archive_state.jobs import JobQueue
from testkit.orthanc_process import REPO, OrthancProcess, deep_merge, free_port, render_config
from testkit.processes import stop_process

PYTHON = sys.executable


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0,
             interval: float = 0.1) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class ServiceProcess:
    """One ``python -m …`` service with its log file."""

    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServiceProcess":
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=log, env=dict(self.env),
                                            cwd=REPO)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL by pid: no clean-up at all, as a crash."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Archive:
    """Orthanc + API (+ workers started by the test) on free loopback ports."""

    workdir: Path
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    credential: InternalCredential = field(
        default_factory=lambda: InternalCredential("archive-internal", secrets.token_urlsafe(24)))
    orthanc: OrthancProcess | None = None
    api: ServiceProcess | None = None
    workers: list[ServiceProcess] = field(default_factory=list)
    #: Requests to the API as an administrator (an admin API key made in the control database).
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, ARCHIVE_HOME=str(REPO),
                    ARCHIVE_DATA=str(self.workdir / "orthanc" / "data"),
                    ARCHIVE_RUN=str(self.workdir / "run"))

    @property
    def config(self) -> Configuration:
        assert self.orthanc is not None
        return load(self.orthanc.config_dir, env=self.env)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def orthanc_url(self) -> str:
        assert self.orthanc is not None
        return self.orthanc.url

    @property
    def auth(self) -> tuple[str, str]:
        return (self.credential.username, self.credential.password)

    def start(self) -> "Archive":
        base: dict[str, Mapping[str, Any]] = {
            "orthanc.json": {"AuthenticationEnabled": True,
                             "RegisteredUsers": {self.credential.username:
                                                 self.credential.password},
                             "StableAge": 1, "MaximumStorageCacheSize": 0},
            "archive.json": {"Archive": {"Jobs": {"PollSeconds": 0.2, "LeaseSeconds": 3.0,
                                                  "RetryDelaySeconds": 1.0}}},
        }
        overrides = {name: deep_merge(base.get(name, {}), extra)
                     for name, extra in self.overrides.items()}
        merged: dict[str, Mapping[str, Any]] = {**base, **overrides}
        self.orthanc = OrthancProcess(self.workdir / "orthanc", overrides=merged,
                                      ready_path="/system", ready_statuses=(200, 401))
        # What the launcher does before anything starts: state folder, migrations, credential.
        config = load(render_config(self.workdir / "preview", merged), env=self.env)
        state = Path(config.archive.state_directory)
        state.mkdir(parents=True, exist_ok=True)
        migrate(state_database_url(config.archive), "state")
        migrate(control_database_url(config.archive), "control")
        engine = make_engine(control_database_url(config.archive))
        try:
            key, _ = AuthService.build(engine, config.archive.security).api_keys.create(
                "test-suite", ["admin"], tenants=None, created_by="tests")
        finally:
            engine.dispose()
        self.http.headers["Authorization"] = f"Bearer {key}"
        path = state / "internal-credential.json"
        path.write_text(json.dumps({"username": self.credential.username,
                                    "password": self.credential.password}))
        path.chmod(0o600)
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        self.orthanc.start()
        return self

    def start_api(self, extra: Sequence[str] = ()) -> ServiceProcess:
        assert self.orthanc is not None
        self.api = ServiceProcess(
            [PYTHON, "-m", "archive_api", "--config", str(self.orthanc.config_dir),
             "--port", str(self.api_port), *extra],
            self.env, self.workdir / "api.log").start()

        def ready() -> bool:
            assert self.api is not None
            if not self.api.alive():
                raise AssertionError(f"API exited:\n{self.api.log_text()}")
            try:
                return requests.get(self.api_url + "/api/health", timeout=2).status_code in (
                    200, 503)
            except requests.ConnectionError:
                return False

        wait_for("the API service", ready)
        return self.api

    def start_worker(self, name: str, extra: Sequence[str] = ()) -> ServiceProcess:
        assert self.orthanc is not None
        worker = ServiceProcess(
            [PYTHON, "-m", "archive_worker", "--config", str(self.orthanc.config_dir),
             "--name", name, *extra],
            self.env, self.workdir / f"{name}.log").start()
        self.workers.append(worker)
        wait_for(f"{name} to start", lambda: "running kinds" in worker.log_text()
                 or not worker.alive())
        assert worker.alive(), worker.log_text()
        return worker

    def queue(self) -> JobQueue:
        settings = self.config.archive
        return JobQueue(make_engine(state_database_url(settings)), settings.tenant,
                        settings.jobs)

    def upload(self, dicom: bytes) -> dict[str, Any]:
        response = requests.post(self.orthanc_url + "/instances", data=dicom, auth=self.auth,
                                 timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
        if self.orthanc is not None:
            self.orthanc.stop()
