"""Where everything is: the checkout, the data folder and the run folder inside it.

One object computes every path so the renderers, the launcher, the systemd writer and the test
kit agree on them. The run folder is rebuilt from the configuration on each start and holds no
state; what must survive (the internal credential, a generated certificate) lives in
``Archive.StateDirectory``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The checkout: services/archive_door/layout.py → the repository root.
REPO: Final = Path(__file__).resolve().parents[2]
DEFAULT_ORTHANC: Final = "/usr/sbin/Orthanc"
DEFAULT_NGINX: Final = "/usr/sbin/nginx"
#: Built by scripts/setup (orthanc-plugins/native/thread_stack.c): raises civetweb's 100 KiB
#: HTTP thread stacks, which GDCM's transcoding overflows.
THREAD_STACK_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-thread-stack.so"
#: Built by scripts/setup (orthanc-plugins/native/charls_route.c): sends GDCM's CharLS calls to
#: CharLS 2 rather than to DCMTK's same-named copy, which crashes Orthanc on JPEG-LS transcoding.
CHARLS_ROUTE_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-charls-route.so"
#: Built by scripts/setup (orthanc-plugins/native/quick_ack.c): acknowledges DICOM senders' data
#: at once instead of after the kernel's delayed ACK (Archive.Dicom.SuppressDelayedAck).
QUICK_ACK_SHIM: Final = REPO / ".cache" / "lib" / "libarchive-quick-ack.so"
#: Built by scripts/install-console.
CONSOLE_BUILD: Final = REPO / ".cache" / "console" / "dist"


@dataclass(frozen=True)
class Layout:
    """Paths of one archive's processes. ``data`` is ``ARCHIVE_DATA``; ``state`` is
    ``Archive.StateDirectory`` (usually ``DATA/state``)."""

    home: Path
    data: Path
    state: Path

    @property
    def run(self) -> Path:
        return self.data / "run"

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def orthanc_config(self) -> Path:
        return self.run / "orthanc"

    @property
    def nginx_conf(self) -> Path:
        return self.run / "nginx.conf"

    @property
    def nginx_routes(self) -> Path:
        return self.run / "nginx-routes.conf"

    @property
    def supervisord_conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def ohif(self) -> Path:
        return self.run / "ohif"

    @property
    def orthanc_tmp(self) -> Path:
        """Orthanc's ``TMPDIR`` (mode 0700, new at each start with the run folder): what Orthanc
        and its codecs write as temporary files (GDCM's PVRG fallback leaves decoded pixels)."""
        return self.run / "tmp" / "orthanc"

    @property
    def tls(self) -> Path:
        return self.run / "tls"

    @property
    def credential(self) -> Path:
        return self.state / "internal-credential.json"

    @property
    def generated_tls(self) -> Path:
        """The self-signed certificate made once, kept across re-renders of the run folder."""
        return self.state / "tls"

    def program_log(self, program: str) -> Path:
        return self.logs / f"{program}.log"


@dataclass(frozen=True)
class Executables:
    """The programs the processes run; from the environment, so a platform can swap Orthanc."""

    python: str
    orthanc: str
    nginx: str
    plugin_venv: str
    thread_stack_shim: Path
    quick_ack_shim: Path = QUICK_ACK_SHIM
    charls_route_shim: Path = CHARLS_ROUTE_SHIM

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> "Executables":
        env = dict(os.environ) if env is None else env
        return cls(
            python=sys.executable,
            orthanc=env.get("ARCHIVE_ORTHANC") or DEFAULT_ORTHANC,
            nginx=env.get("ARCHIVE_NGINX") or DEFAULT_NGINX,
            plugin_venv=env.get("ARCHIVE_PLUGIN_VENV") or str(REPO / ".venv"),
            thread_stack_shim=THREAD_STACK_SHIM,
        )
