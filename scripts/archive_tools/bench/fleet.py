"""Start N clients at once and collect what they did: Python workers or DCMTK's storescu.

Python workers (:mod:`.worker`) are started and prepared first, then released together by a
``GO`` line, so interpreter start-up is not timed. ``storescu`` is timed from its exec: starting
a C program is part of what a modality does. Every process is killed when the fleet ends,
whatever happened.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from . import worker

log = logging.getLogger(__name__)

STORESCU: Final = "/usr/bin/storescu"  # DCMTK's, not pynetdicom's app of the same name in .venv


class FleetFailed(RuntimeError):
    """A client failed or did not finish: the case's measurement is void."""


@dataclass(frozen=True)
class FleetOutcome:
    t0: float
    t_end: float
    count: int
    bytes: int
    first_done: float | None
    latencies: tuple[float, ...]

    @property
    def elapsed(self) -> float:
        return self.t_end - self.t0


def _kill(processes: Sequence[subprocess.Popen[Any]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.kill()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("process %d did not die", p.pid)


def _readline(stream: IO[str], what: str) -> str:
    line = stream.readline()
    if not line:
        raise FleetFailed(f"worker closed its output before {what}")
    return line.strip()


def run_workers(jobs: Sequence[Mapping[str, Any]], *, timeout: float,
                on_go: Callable[[float], None] | None = None) -> FleetOutcome:
    """Run one :mod:`.worker` per job, released together; ``on_go(t0)`` runs just before."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for job in jobs:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "archive_tools.bench.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True))
            assert processes[-1].stdin is not None
            processes[-1].stdin.write(json.dumps(job) + "\n")
            processes[-1].stdin.flush()
        for p in processes:
            assert p.stdout is not None
            line = _readline(p.stdout, "READY")
            if line != worker.READY:
                raise FleetFailed(f"worker did not start: {line[:300]}")
        t0 = time.monotonic()
        if on_go is not None:
            on_go(t0)
        for p in processes:
            assert p.stdin is not None
            p.stdin.write(worker.GO + "\n")
            p.stdin.flush()
        outcomes = []
        deadline = t0 + timeout
        for p in processes:
            assert p.stdout is not None
            # readline blocks; the deadline is enforced by the workers' own request timeouts
            line = _readline(p.stdout, "its outcome")
            outcomes.append(worker.Outcome(**json.loads(line)))
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        errors = [o.error for o in outcomes if o.error]
        if errors:
            raise FleetFailed(f"{len(errors)} of {len(outcomes)} clients failed: {errors[0]}")
        firsts = [o.first_done for o in outcomes if o.first_done is not None]
        return FleetOutcome(
            t0=t0, t_end=max(o.finished for o in outcomes),
            count=sum(o.count for o in outcomes), bytes=sum(o.bytes for o in outcomes),
            first_done=min(firsts) if firsts else None,
            latencies=tuple(v for o in outcomes for v in o.latencies))
    finally:
        _kill(processes)


def storescu_argv(host: str, port: int, called_aet: str, files: Sequence[Path],
                  calling_aet: str = "BENCH") -> list[str]:
    return [STORESCU, "-aet", calling_aet, "-aec", called_aet, host, str(port),
            *(str(f) for f in files)]


def run_commands(argvs: Sequence[Sequence[str]], *, count: int, total_bytes: int,
                 timeout: float, on_start: Callable[[float], None] | None = None,
                 env: Mapping[str, str] | None = None) -> FleetOutcome:
    """Run the commands at once; they must all exit 0 (``count``/``total_bytes``: their work)."""
    environment = dict(os.environ if env is None else env)
    environment.setdefault("TCP_NODELAY", "1")  # Debian's DCMTK leaves Nagle on otherwise
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        t0 = time.monotonic()
        if on_start is not None:
            on_start(t0)
        for argv in argvs:
            output: IO[bytes] = tempfile.TemporaryFile()
            logs.append(output)
            processes.append(subprocess.Popen(list(argv), stdout=output, stderr=subprocess.STDOUT,
                                              env=environment, start_new_session=True))
        tool = Path(argvs[0][0]).name if argvs else "?"
        ends = []
        for p in processes:
            remaining = max(0.1, t0 + timeout - time.monotonic())
            try:
                p.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                raise FleetFailed(f"{tool} still running after {timeout} s") from None
            ends.append(time.monotonic())
        for p, output in zip(processes, logs):
            if p.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace")[-600:]
                raise FleetFailed(f"{tool} exited with {p.returncode}: {text}")
        return FleetOutcome(t0=t0, t_end=max(ends), count=count, bytes=total_bytes,
                            first_done=None, latencies=())
    finally:
        _kill(processes)
        for output in logs:
            output.close()


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt round-robin into ``parts`` non-empty lists (fewer if too few items)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[i::parts]) for i in range(parts)]


__all__ = ["FleetFailed", "FleetOutcome", "run_workers", "run_commands", "storescu_argv",
           "split", "STORESCU"]
