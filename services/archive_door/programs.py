"""The archive's processes, described once; supervisord and systemd both run these.

Order matters only for stopping and for logs: Orthanc first, then the API service and the
workers (they wait for Orthanc themselves and report "degraded" until it answers), nginx last.
Each program keeps running on its own: if one dies, only it is restarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archive_config.settings import ArchiveSettings

from .layout import Executables, Layout


@dataclass(frozen=True)
class Program:
    name: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Seconds a start must last to count as started.
    start_seconds: int = 3
    stop_signal: str = "TERM"
    #: Seconds between the stop signal and SIGKILL.
    stop_wait_seconds: int = 30
    description: str = ""


def common_environment(layout: Layout, executables: Executables) -> dict[str, str]:
    """What every program is told about where it runs (docs/architecture.md, run folder)."""
    return {
        "ARCHIVE_HOME": str(layout.home),
        "ARCHIVE_DATA": str(layout.data),
        "ARCHIVE_RUN": str(layout.run),
        "ARCHIVE_VENV": executables.plugin_venv,
        "ARCHIVE_PLUGIN_VENV": executables.plugin_venv,
        "PYTHONUNBUFFERED": "1",
    }


#: Files Orthanc's programs create are for their own user only (supervisord's ``umask``, systemd's
#: ``UMask=``): decoded pixels in a codec's temporary file are patient data.
UMASK = "0077"


def orthanc_preload(settings: ArchiveSettings, executables: Executables) -> dict[str, str]:
    """``LD_PRELOAD`` and ``ARCHIVE_QUICKACK`` of Orthanc: the thread-stack and CharLS-routing
    shims always, the quick-ACK shim when ``Archive.Dicom.SuppressDelayedAck`` is on (off: not
    loaded at all, and told to stay inert should something else preload it)."""
    preload = [str(executables.thread_stack_shim), str(executables.charls_route_shim)]
    if settings.dicom.suppress_delayed_ack:
        preload.append(str(executables.quick_ack_shim))
    return {"LD_PRELOAD": " ".join(preload),
            "ARCHIVE_QUICKACK": "1" if settings.dicom.suppress_delayed_ack else "0"}


#: What Orthanc must log for the DICOM audit (``Archive.Dicom.Audit``): the generic category's
#: ``Incoming … request from AET …`` line of every DIMSE request, and the DICOM category's
#: C-MOVE destination and resources sent (``archive_audit.orthanc_log``). Measured: 314 bytes
#: (bookworm) or 556 (trixie) of log and +1.6-4 % of Orthanc's CPU per stored 64×64 image,
#: +1.3 % per 512×512 one, no measurable change in images/s (docs/decisions.md, "The DICOM
#: audit").
DICOM_AUDIT_VERBOSITY = ("--verbose-generic", "--verbose-dicom")


def orthanc_arguments(settings: ArchiveSettings) -> tuple[str, ...]:
    """Orthanc's command-line options before the configuration path."""
    return DICOM_AUDIT_VERBOSITY if settings.dicom_audit else ()


def programs(settings: ArchiveSettings, layout: Layout, executables: Executables) -> list[Program]:
    config = str(layout.orthanc_config)
    orthanc_env = {
        # Debian's DCMTK (inside Orthanc) leaves Nagle on unless told: DIMSE ingest crawls.
        "TCP_NODELAY": "1",
        # Orthanc's and its codecs' temporary files (boost's temp_directory_path and glibc's
        # tempnam read TMPDIR): a private folder, not the shared /tmp.
        "TMPDIR": str(layout.orthanc_tmp),
        **orthanc_preload(settings, executables),
    }
    listed = [
        Program("orthanc", (executables.orthanc, *orthanc_arguments(settings), config),
                orthanc_env, start_seconds=5,
                stop_wait_seconds=60, description="Orthanc: DICOM, DICOMweb, the index and files"),
        Program("api", (executables.python, "-m", "archive_api", "--config", config),
                description="API service: /api, QIDO decoding, health, jobs"),
    ]
    for n in range(1, settings.jobs.workers + 1):
        listed.append(Program(
            f"worker-{n}",
            (executables.python, "-m", "archive_worker", "--config", config, "--name", f"worker-{n}"),
            description="job worker: durable jobs and the change outbox"))
    listed.append(Program(
        "door",
        # Clears the workers a killed nginx master left (nginx_start.py), then execs
        # nginx -p DATA/run/ -c DATA/run/nginx.conf -e stderr -g 'daemon off;'.
        (executables.python, "-m", "archive_door", "nginx", "--run", str(layout.run),
         "--nginx", executables.nginx),
        # QUIT: finish the requests in flight, then stop.
        stop_signal="QUIT", stop_wait_seconds=10, description="the door: nginx"))
    return listed


def shim_missing(executables: Executables) -> Path | None:
    shim = executables.thread_stack_shim
    return None if shim.is_file() else shim
