"""What machine the figures come from, and how busy others kept it meanwhile.

The machine is described from /proc, /sys and ``os.uname``; tool versions from the tools.
:class:`BackgroundLoad` samples /proc every few seconds and sums the CPU time of processes that
are not the benchmark's (nor its children): other people's test runs on a shared machine.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def memory_gib(meminfo: str) -> float:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def os_name(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _command(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip()


def disk(path: Path) -> dict[str, Any]:
    """The filesystem holding ``path``: device, type, size, free space, rotational or not."""
    out = _command(["df", "-P", "-T", "-B1", str(path)]).splitlines()
    info: dict[str, Any] = {"path": str(path)}
    if len(out) >= 2:
        device, fstype, size, _used, avail = out[1].split()[:5]
        info.update(device=device, filesystem=fstype, size_gb=round(int(size) / 1e9, 1),
                    free_gb=round(int(avail) / 1e9, 1))
        block = Path(device).name.rstrip("0123456789") if device.startswith("/dev/") else ""
        rotational = _read(f"/sys/block/{block}/queue/rotational").strip()
        if rotational:
            info["rotational"] = rotational == "1"
        model = _read(f"/sys/block/{block}/device/model").strip()
        if model:
            info["model"] = model
    return info


def describe(data_path: Path) -> dict[str, Any]:
    uname = os.uname()
    hypervisor = ""
    for line in _command(["lscpu"]).splitlines():
        if line.startswith("Hypervisor vendor:"):
            hypervisor = line.split(":", 1)[1].strip()
    return {
        "cpu_model": cpu_model(_read("/proc/cpuinfo")),
        "logical_cpus": os.cpu_count() or 0,
        "memory_gib": memory_gib(_read("/proc/meminfo")),
        "kernel": f"{uname.sysname} {uname.release}",
        "os": os_name(_read("/etc/os-release")),
        "hypervisor": hypervisor or None,
        "hostname": uname.nodename,
        "disk": disk(data_path),
        "python": platform.python_version(),
    }


def first_line(argv: list[str]) -> str | None:
    text = _command(argv)
    return text.splitlines()[0].strip() if text else None


def tool_versions() -> dict[str, Any]:
    import pydicom
    import pynetdicom
    import requests

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return {
        "dcmtk_storescu": first_line(["/usr/bin/storescu", "--version"]),
        "pynetdicom": pynetdicom.__version__,
        "pydicom": pydicom.__version__,
        "requests": requests.__version__,
        "chromium": first_line(["/usr/bin/chromium", "--version"]),
        "py_spy": first_line([spy, "--version"]),
    }


# --- others' load during the run ---------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    ppid: int
    session: int
    comm: str
    ticks: int


def parse_stat(text: str) -> ProcSample | None:
    """(ppid, session, comm, utime+stime) from a /proc/<pid>/stat line (proc(5); the command
    name may hold spaces and parentheses, so fields are counted from the last ')')."""
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < 0:
        return None
    fields = text[right + 2:].split()
    try:
        return ProcSample(ppid=int(fields[1]), session=int(fields[3]),
                          comm=text[left + 1:right], ticks=int(fields[11]) + int(fields[12]))
    except (IndexError, ValueError):
        return None


def snapshot() -> dict[int, ProcSample]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            sample = parse_stat(_read(f"/proc/{entry.name}/stat"))
            if sample is not None:
                out[int(entry.name)] = sample
    return out


def descendants(root: int, procs: Mapping[int, ProcSample]) -> set[int]:
    """``root``, its descendants, and every process in a session one of them leads.

    The benchmark starts its servers and clients in sessions of their own; a process that one
    of them forked and left to init (Chromium's zygotes) stays in that session.
    """
    children: dict[int, list[int]] = {}
    for pid, sample in procs.items():
        children.setdefault(sample.ppid, []).append(pid)
    out, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    sessions = {procs[pid].session for pid in out if pid in procs}
    sessions.discard(0)
    return out | {pid for pid, s in procs.items() if s.session in sessions}


def foreign_ticks(before: Mapping[int, ProcSample], after: Mapping[int, ProcSample],
                  ours: set[int]) -> dict[str, int]:
    """CPU ticks spent between two snapshots by processes not in ``ours``, by command name.

    Kernel threads (children of kthreadd, pid 2) are left out: they mostly write our files back.
    """
    out: dict[str, int] = {}
    for pid, sample in after.items():
        if pid in ours or pid == 2 or sample.ppid == 2 or pid not in before:
            continue
        delta = sample.ticks - before[pid].ticks
        if delta > 0:
            out[sample.comm] = out.get(sample.comm, 0) + delta
    return out


@dataclass
class BackgroundLoad:
    """Samples other processes' CPU use every ``interval`` seconds in a daemon thread."""

    interval: float = 5.0
    root: int = field(default_factory=os.getpid)
    percents: list[float] = field(default_factory=list)
    by_command: dict[str, int] = field(default_factory=dict)
    loadavg_start: str = ""
    loadavg_end: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.loadavg_start = _read("/proc/loadavg").strip()
        self._thread = threading.Thread(target=self._loop, name="background-load", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        before, t_before = snapshot(), time.monotonic()
        while not self._stop.wait(self.interval):
            after, t_after = snapshot(), time.monotonic()
            spent = foreign_ticks(before, after, descendants(self.root, after))
            for name, ticks in spent.items():
                self.by_command[name] = self.by_command.get(name, 0) + ticks
            self.percents.append(100 * sum(spent.values()) / tick / (t_after - t_before))
            before, t_before = after, t_after

    def stop(self) -> None:
        self.loadavg_end = _read("/proc/loadavg").strip()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def summary(self) -> dict[str, Any]:
        tick = os.sysconf("SC_CLK_TCK")
        top = sorted(self.by_command.items(), key=lambda kv: -kv[1])[:8]
        mean = sum(self.percents) / len(self.percents) if self.percents else 0.0
        return {
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
            "foreign_cpu_percent_mean": round(mean, 1),
            "foreign_cpu_percent_max": round(max(self.percents, default=0.0), 1),
            "samples": len(self.percents),
            "interval_s": self.interval,
            "foreign_cpu_seconds_by_command": {k: round(v / tick, 1) for k, v in top},
            "cpu_percent_scale": f"100 = one of {os.cpu_count()} CPUs busy",
        }
