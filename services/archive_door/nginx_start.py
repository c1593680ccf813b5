"""Start nginx for the door after clearing what a killed predecessor left behind.

When nginx's master process is killed (``kill -9``, the OOM killer), its workers live on: they
still hold the door's listening sockets, so the master that supervisord starts next cannot bind
and fails again and again. nginx has no option for workers to follow their master, so this
step, run before every start, finds the workers of the previous master (its PID is in
``nginx.pid``; supervisord put it in a process group of its own, which its workers share) and
stops them, then execs nginx. Only processes of that group that run the nginx binary are touched.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _process_group(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[2])


def _executable(pid: int) -> str | None:
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return None


def leftover_workers(pid_file: Path, nginx: str) -> list[int]:
    """PIDs of nginx processes in the process group of the master named by ``pid_file``."""
    try:
        master = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return []
    binary = os.path.realpath(nginx)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != os.getpid() and _process_group(pid) == master and _executable(pid) == binary:
            found.append(pid)
    return found


def stop_leftovers(pid_file: Path, nginx: str, timeout: float = 5.0) -> list[int]:
    """SIGTERM the leftover workers (nginx's fast shutdown), SIGKILL what remains after ``timeout``."""
    pids = leftover_workers(pid_file, nginx)
    if not pids:
        return []
    log.warning("stopping nginx processes left by a killed master: %s", pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_process_group(p) is not None for p in pids):
            time.sleep(0.05)
        pids = [p for p in pids if _process_group(p) is not None]
        if not pids:
            break
    return pids


def exec_nginx(run: Path, nginx: str) -> None:
    stop_leftovers(run / "nginx.pid", nginx)
    command = [nginx, "-p", f"{run}/", "-c", str(run / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"]
    os.execv(nginx, command)
