"""Is the quick-ACK shim really at work in Orthanc's process? (``/api/health``'s view of it.)

``Archive.Dicom.SuppressDelayedAck`` makes the launcher preload
``orthanc-plugins/native/quick_ack.c`` into Orthanc (docs/decisions.md). A setting says what was
asked; this module says what Orthanc's process holds, from Linux's own records of it:
``/proc/<pid>/maps`` lists every shared object mapped into the process, ``/proc/<pid>/environ``
the environment it was started with (``ARCHIVE_QUICKACK=0`` leaves a loaded shim inert). The pid
is the one supervisord reports; under the trixie platform's wrapper it is Orthanc's too, the
wrapper execs into it. Both files need the rights of Orthanc's user (the same user here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

FEATURE: Final = "dicom-quick-ack"
LIBRARY: Final = "libarchive-quick-ack.so"
#: Values of ARCHIVE_QUICKACK that switch the shim off (the same words quick_ack.c accepts).
OFF: Final = frozenset({"0", "false", "off", "no"})

ShimState = Literal["active", "inert", "not-loaded", "unknown"]


def shim_state(pid: int | None, proc: Path = Path("/proc")) -> ShimState:
    """``active``: loaded and switched on; ``inert``: loaded with ``ARCHIVE_QUICKACK`` off;
    ``not-loaded``; ``unknown``: no pid, or its ``/proc`` entries cannot be read."""
    if pid is None:
        return "unknown"
    try:
        maps = (proc / str(pid) / "maps").read_text(errors="replace")
        environ = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return "unknown"
    if not any(line.rstrip().endswith("/" + LIBRARY) for line in maps.splitlines()):
        return "not-loaded"
    for entry in environ.split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name == b"ARCHIVE_QUICKACK":
            return "inert" if value.decode(errors="replace").strip().lower() in OFF else "active"
    return "active"


def in_effect(enabled: bool, state: ShimState) -> bool:
    """Whether health lists :data:`FEATURE`: what Orthanc's process shows when it can be seen,
    the setting when it cannot (an Orthanc in another container)."""
    return state == "active" or (state == "unknown" and enabled)


def describe(enabled: bool, state: ShimState) -> str:
    """A few words for the orthanc service's detail."""
    if state == "unknown":
        return f"quick-ACK {'on' if enabled else 'off'} (setting; process not visible)"
    if enabled and state != "active":
        return f"quick-ACK asked for but {state}"
    return f"quick-ACK {state}"
