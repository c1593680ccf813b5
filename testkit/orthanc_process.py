"""Run a real Orthanc from the shipped ``config/``, with overrides, on free loopback ports.

Shared by the test suite (through :mod:`testkit.archive_process`) and the benchmark
(``archive_tools.bench``), which also runs a *vanilla* Orthanc: the same binary and C++
plugins from the same configuration, without our Python plugin.

The configuration files are read with their comments, merged with the overrides asked for
(``{file name: {key: value}}``; a value of :data:`DROP` removes the key, a file mapped to
:data:`DROP` is left out), and written to a private folder. Orthanc then runs with its own data
folder and readiness is polled on an HTTP path rather than slept for.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import requests

from archive_config import jsonc
from testkit.platform import Platform, current as current_platform
from testkit.processes import stop_process

REPO: Final = Path(__file__).resolve().parents[1]
CONFIG_DIR: Final = REPO / "config"
#: Built by scripts/setup: raises the 100 KiB stacks of Debian's civetweb HTTP threads, which
#: GDCM's transcoding overflows (orthanc-plugins/native/thread_stack.c, docs/decisions.md).
THREAD_STACK_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-thread-stack.so"
#: Built by scripts/setup: sends GDCM's CharLS calls to CharLS 2 instead of DCMTK's bundled copy,
#: whose same-named functions crash Orthanc on any GDCM JPEG-LS transcoding
#: (orthanc-plugins/native/charls_route.c).
CHARLS_ROUTE_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-charls-route.so"
#: Built by scripts/setup: TCP_QUICKACK after each read of a TCP socket, preloaded like the
#: launcher does when ``Archive.Dicom.SuppressDelayedAck`` is on (orthanc-plugins/native/quick_ack.c).
QUICK_ACK_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-quick-ack.so"


def suppresses_delayed_ack(config: Path) -> bool:
    """Whether the launcher would preload the quick-ACK shim for this configuration folder.

    Only an archive has the setting: a configuration without an ``Archive`` section (vanilla
    Orthanc, the benchmark's comparison) gets no shim; an archive gets it unless
    ``Archive.Dicom.SuppressDelayedAck`` is false.
    """
    for path in sorted(config.glob("*.json")):
        archive = json.loads(path.read_text()).get("Archive")
        if isinstance(archive, Mapping):
            dicom = archive.get("Dicom")
            return not (isinstance(dicom, Mapping) and dicom.get("SuppressDelayedAck") is False)
    return False


class _Drop:
    """Marker: remove this key (or this whole file) from the rendered configuration."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()

Overrides = Mapping[str, Mapping[str, Any] | _Drop]


def free_port() -> int:
    """A TCP port that nothing listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively for nested objects; :data:`DROP` deletes."""
    out = dict(base)
    for key, value in extra.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render_config(target: Path, overrides: Overrides, source: Path = CONFIG_DIR) -> Path:
    """Write ``source``/*.json to ``target`` merged with ``overrides``; return ``target``.

    A file named in ``overrides`` that ``source`` lacks is written as given.
    """
    target.mkdir(parents=True, exist_ok=True)
    for path in jsonc.config_files(source):
        extra = overrides.get(path.name, {})
        if isinstance(extra, _Drop):
            continue
        data = deep_merge(jsonc.load_file(path), extra)
        (target / path.name).write_text(json.dumps(data, indent=2, ensure_ascii=False))
    for name, extra in overrides.items():
        if not isinstance(extra, _Drop) and not (source / name).exists():
            (target / name).write_text(json.dumps(dict(extra), indent=2, ensure_ascii=False))
    return target


class StartupFailed(RuntimeError):
    """Orthanc exited or did not become ready; ``log`` is what it wrote."""

    def __init__(self, message: str, log: str, returncode: int | None) -> None:
        super().__init__(message)
        self.log = log
        self.returncode = returncode


@dataclass
class OrthancProcess:
    """One Orthanc process with its own configuration and data under ``workdir``.

    ``ready_path`` is polled until it answers one of ``ready_statuses``: ``/api/health`` for our
    archive, ``/system`` for a vanilla Orthanc. ``new_session`` puts Orthanc in its own process
    group, so that a Ctrl-C in the terminal reaches only its owner, which then stops it in order.
    ``platform`` is the Orthanc to run (``ARCHIVE_PLATFORM``, :mod:`testkit.platform`).
    """

    workdir: Path
    overrides: Overrides = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    aet: str = "ARCHIVE"
    ready_path: str = "/api/health"
    ready_statuses: tuple[int, ...] = (200, 503)
    config_source: Path = CONFIG_DIR
    new_session: bool = False
    platform: Platform = field(default_factory=current_platform)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60.0) -> "OrthancProcess":
        ports = {"orthanc.json": {"HttpPort": self.http_port, "DicomPort": self.dicom_port,
                                  "DicomAet": self.aet}}
        merged: dict[str, Mapping[str, Any] | _Drop] = dict(ports)
        for name, extra in self.overrides.items():
            base = merged.get(name)
            if isinstance(extra, _Drop) or not isinstance(base, Mapping):
                merged[name] = extra
            else:
                merged[name] = deep_merge(base, extra)
        config = render_config(self.config_dir, merged, self.config_source)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        quick_ack = suppresses_delayed_ack(config)
        preload = [THREAD_STACK_SHIM, CHARLS_ROUTE_SHIM, *([QUICK_ACK_SHIM] if quick_ack else [])]
        for shim in preload:
            if not shim.is_file():
                raise StartupFailed(f"{shim} is missing: run scripts/setup", "", None)
        # TCP_NODELAY: Debian's DCMTK (inside Orthanc) leaves Nagle on unless told otherwise.
        env = dict(os.environ, ARCHIVE_HOME=str(REPO), ARCHIVE_DATA=str(self.data_dir),
                   **self.platform.orthanc_env(), TCP_NODELAY="1",
                   LD_PRELOAD=" ".join(str(shim) for shim in preload),
                   ARCHIVE_QUICKACK="1" if quick_ack else "0")
        command = [*self.platform.orthanc_command, str(config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log,
                                            env=env, cwd=self.workdir,
                                            start_new_session=self.new_session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise StartupFailed(f"Orthanc exited with {code}", self.log_text(), code)
            try:
                r = requests.get(self.url + self.ready_path, timeout=2)
                if r.status_code in self.ready_statuses:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise StartupFailed(f"Orthanc did not answer {self.ready_path} in time",
                            self.log_text(), None)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if Orthanc has not exited after ``timeout`` seconds."""
        if self.process is not None:
            stop_process(self.process, timeout)

    def __enter__(self) -> "OrthancProcess":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
