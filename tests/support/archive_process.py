"""Start a real Orthanc with our plugin, from the shipped config/ with test overrides.

The shipped configuration files are read (comments and all), merged with the overrides a test
asks for, and written to a private folder; Orthanc then runs on free ports with its own data
folder, and readiness is polled on ``/api/health`` rather than slept for.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from regional_archive import jsonc

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
#: Built by scripts/setup; raises the 100 KiB stacks of Debian's civetweb HTTP threads.
THREAD_STACK_SHIM = REPO / ".cache" / "lib" / "libarchive-thread-stack.so"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render_config(target: Path, overrides: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write config/*.json to ``target`` with ``overrides`` ({file name: {key: value}})."""
    target.mkdir(parents=True, exist_ok=True)
    for path in jsonc.config_files(CONFIG_DIR):
        data = jsonc.load_file(path)
        data = deep_merge(data, overrides.get(path.name, {}))
        (target / path.name).write_text(json.dumps(data, indent=2, ensure_ascii=False))
    for name, data in overrides.items():
        if not (CONFIG_DIR / name).exists():
            (target / name).write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return target


class StartupFailed(RuntimeError):
    def __init__(self, message: str, log: str, returncode: int | None) -> None:
        super().__init__(message)
        self.log = log
        self.returncode = returncode


@dataclass
class ArchiveProcess:
    workdir: Path
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    aet: str = "ARCHIVE"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60.0) -> "ArchiveProcess":
        ports = {"orthanc.json": {"HttpPort": self.http_port, "DicomPort": self.dicom_port,
                                  "DicomAet": self.aet}}
        overrides = deep_merge(ports, self.overrides)
        config = render_config(self.workdir / "config", overrides)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not THREAD_STACK_SHIM.is_file():
            raise StartupFailed(f"{THREAD_STACK_SHIM} is missing: run scripts/setup", "", None)
        env = dict(os.environ, ARCHIVE_HOME=str(REPO), ARCHIVE_DATA=str(self.data_dir),
                   ARCHIVE_VENV=str(REPO / ".venv"), TCP_NODELAY="1",
                   LD_PRELOAD=str(THREAD_STACK_SHIM))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(["Orthanc", str(config)], stdout=log, stderr=log,
                                        env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise StartupFailed(f"Orthanc exited with {code}", self.log_text(), code)
            try:
                r = requests.get(f"{self.url}/api/health", timeout=2)
                if r.status_code in (200, 503):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise StartupFailed("Orthanc did not answer /api/health in time", self.log_text(), None)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
