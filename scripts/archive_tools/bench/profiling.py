"""py-spy attached to our Orthanc while a case runs: its flame graph and the heaviest frames.

py-spy samples the Python interpreter embedded in Orthanc (our plugin's code) from outside the
process; ``--native`` adds the C/C++ frames around it (civetweb, Orthanc, the Python plugin).
The flame graph is py-spy's own (``--format flamegraph``, an interactive SVG). The text summary
comes from a second recording in ``--format raw`` (collapsed stacks, ``root;…;leaf count`` per
line): stacks that only sleep (Orthanc's main thread waiting in ``usleep``, idle worker
threads) are dropped, and the frames are ranked by their samples. The two recordings are made
one after the other, each over its own runs of the case: two py-spy attached at once to one
process interfere (each pauses the threads to unwind native stacks).

Orthanc threads that never enter Python (DIMSE, routes of the C++ plugins) are invisible to
py-spy: when our archive is slower and py-spy sees almost nothing, the time is not spent in our
plugin's Python code, which is an answer too.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

RATE: Final = 200
#: A stack holding one of these (by function name) is waiting, not working.
IDLE: Final = frozenset({
    "usleep", "sleep", "nanosleep", "clock_nanosleep", "poll", "ppoll", "epoll_wait", "select",
    "pselect", "pthread_cond_wait", "pthread_cond_timedwait", "sem_wait", "sem_timedwait",
    "accept", "accept4", "pthread_join",
})
#: Python frames (function, file ending) that block in C code without a named wait: a stack
#: whose innermost Python frame is one of them is idle (the API service's thread pool waiting
#: for work, an event loop's selector).
IDLE_PYTHON: Final = frozenset({
    ("_worker", "concurrent/futures/thread.py"), ("wait", "threading.py"),
    ("get", "queue.py"), ("select", "selectors.py"), ("_wait_for_tstate_lock", "threading.py"),
})
_LINE = re.compile(r"^(.*) (\d+)$")
_FILE = re.compile(r"\((.*?):\d+\)$")


class ProfilerMissing(RuntimeError):
    pass


def py_spy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise ProfilerMissing("py-spy is not installed (scripts/setup --test installs it)")
    return found


#: py-spy's output formats used here: the flame graph to look at, the stacks to summarise.
FORMATS: Final = ("flamegraph", "raw")


@contextmanager
def recording(pid: int, output: Path, output_format: str = "raw", rate: int = RATE,
              native: bool = True) -> Iterator[Path]:
    """Record ``pid`` while the with-block runs; py-spy writes ``output`` in ``output_format``
    (``flamegraph``: an SVG; ``raw``: collapsed stacks) when it is stopped."""
    if output_format not in FORMATS:
        raise ValueError(f"output_format {output_format!r}: want one of {', '.join(FORMATS)}")
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [py_spy(), "record", "--pid", str(pid), "--output", str(output), "--format",
            output_format, "--rate", str(rate)]
    if native:
        argv.append("--native")
    log_path = output.with_name(output.name + ".log")  # py-spy's own messages
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            time.sleep(1.0)  # attaching takes a moment; what happens before is not sampled
            if process.poll() is not None:
                raise ProfilerMissing(f"py-spy exited with {process.returncode}: "
                                      f"{log_path.read_text(errors='replace')[-300:]}")
            yield output
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- reading collapsed stacks ----------------------------------------------------------------


Stack = tuple[str, ...]


def function(frame: str) -> str:
    """``usleep (libc.so.6)`` → ``usleep``; ``handle (regional_archive/x.py:3)`` → ``handle``."""
    return frame.split(" (", 1)[0].strip()


def is_python(frame: str) -> bool:
    return ".py:" in frame or "<frozen " in frame


def is_idle(stack: Stack) -> bool:
    """Asleep: a frame waits by name (:data:`IDLE`) or the innermost Python frame blocks
    (:data:`IDLE_PYTHON`)."""
    if any(function(f) in IDLE for f in stack):
        return True
    python = [f for f in stack if is_python(f)]
    if not python:
        return False
    match = _FILE.search(python[-1])
    where = match.group(1) if match else ""
    name = function(python[-1])
    return any(name == n and where.endswith(file) for n, file in IDLE_PYTHON)


@dataclass(frozen=True)
class Weighted:
    name: str
    samples: int
    percent: float


@dataclass
class Profile:
    stacks: list[tuple[Stack, int]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "Profile":
        out = cls()
        for line in text.splitlines():
            match = _LINE.match(line.strip())
            if match:
                out.stacks.append((tuple(match.group(1).split(";")), int(match.group(2))))
        return out

    @property
    def total(self) -> int:
        return sum(n for _, n in self.stacks)

    def active(self) -> "Profile":
        """Without the stacks that are asleep."""
        return Profile([(s, n) for s, n in self.stacks if not is_idle(s)])

    def python_share(self) -> float:
        """Fraction of samples whose stack holds Python code (our plugin at work)."""
        total = self.total
        busy = sum(n for s, n in self.stacks if any(is_python(f) for f in s))
        return busy / total if total else 0.0

    def inclusive(self, count: int = 12, python_only: bool = True) -> list[Weighted]:
        """Frames by the samples of the stacks they are on (each stack counted once per name)."""
        totals: dict[str, int] = {}
        for stack, n in self.stacks:
            for frame in set(stack):
                if not python_only or is_python(frame):
                    totals[frame] = totals.get(frame, 0) + n
        return self._top(totals, count)

    def leaves(self, count: int = 12) -> list[Weighted]:
        """Frames by their own samples (where the time is actually spent)."""
        totals: dict[str, int] = {}
        for stack, n in self.stacks:
            if stack:
                totals[stack[-1]] = totals.get(stack[-1], 0) + n
        return self._top(totals, count)

    def _top(self, totals: dict[str, int], count: int) -> list[Weighted]:
        total = self.total or 1
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:count]
        return [Weighted(name, n, round(100 * n / total, 1)) for name, n in ranked]
