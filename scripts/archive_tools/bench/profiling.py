"""py-spy attached to our Orthanc while a case runs: a flame graph and the heaviest frames.

py-spy samples the Python interpreter embedded in Orthanc (our plugin's code) from outside the
process; ``--native`` adds the C/C++ frames around it (civetweb, Orthanc, the Python plugin).
It records collapsed stacks (``--format raw``: ``root;…;leaf count`` per line); stacks that only
sleep (Orthanc's main thread waiting in ``usleep``, idle worker threads) are dropped here, and the
rest is drawn as an icicle graph (root on top) in a self-contained SVG.

Orthanc threads that never enter Python (DIMSE, routes of the C++ plugins) are invisible to
py-spy: when our archive is slower and py-spy sees almost nothing, the time is not spent in our
plugin's Python code, which is an answer too.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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
_LINE = re.compile(r"^(.*) (\d+)$")


class ProfilerMissing(RuntimeError):
    pass


def py_spy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise ProfilerMissing("py-spy is not installed (scripts/setup --test installs it)")
    return found


@contextmanager
def recording(pid: int, output: Path, rate: int = RATE, native: bool = True) -> Iterator[Path]:
    """Record ``pid`` while the with-block runs; collapsed stacks are written to ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [py_spy(), "record", "--pid", str(pid), "--output", str(output), "--format", "raw",
            "--rate", str(rate)]
    if native:
        argv.append("--native")
    log_path = output.with_suffix(".log")
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
        return Profile([(s, n) for s, n in self.stacks
                        if not any(function(f) in IDLE for f in s)])

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


# --- drawing ---------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    samples: int = 0
    children: dict[str, "_Node"] = field(default_factory=dict)


def _tree(stacks: Sequence[tuple[Stack, int]]) -> _Node:
    root = _Node("all")
    for stack, n in stacks:
        root.samples += n
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, _Node(frame))
            node.samples += n
    return root


def _colour(name: str) -> str:
    hue = sum(name.encode()) % 40
    if is_python(name):
        return f"hsl({20 + hue}, 85%, 62%)"  # our Python: warm
    return f"hsl({200 + hue}, 45%, 70%)"  # native: cool


def icicle_svg(profile: Profile, title: str, width: int = 1200, row: int = 17) -> str:
    """An icicle graph (root on top; width = samples) with a tooltip per frame."""
    root = _tree(profile.stacks)
    total = max(root.samples, 1)
    rects: list[str] = []

    def depth_of(node: _Node) -> int:
        return 1 + max((depth_of(c) for c in node.children.values()), default=0)

    def draw(node: _Node, x: float, depth: int) -> None:
        w = width * node.samples / total
        if w < 0.3:
            return
        y = 30 + depth * row
        label = html.escape(node.name)
        pct = 100 * node.samples / total
        text = ""
        chars = int(w / 6.5)
        if chars >= 4:
            shown = node.name if len(node.name) <= chars else node.name[: chars - 1] + "…"
            text = (f'<text x="{x + 3:.1f}" y="{y + 12}" font-size="11" '
                    f'font-family="monospace">{html.escape(shown)}</text>')
        rects.append(f'<g><title>{label} ({node.samples:,} samples, {pct:.2f}%)</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                     f'fill="{_colour(node.name)}" rx="1"/>{text}</g>')
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, offset, depth + 1)
            offset += width * child.samples / total

    draw(root, 0.0, 0)
    height = 40 + depth_of(root) * row
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            f'<text x="4" y="18" font-size="14" font-family="sans-serif">'
            f'{html.escape(title)}</text>' + "".join(rects) + "</svg>\n")


def graph(profile: Profile, what: str, rate: int = RATE) -> str:
    """The icicle graph of the busy stacks, or of every stack when none was busy."""
    active = profile.active()
    shown = active if active.total else profile
    state = (f"{active.total} busy samples of {profile.total}" if active.total else
             f"no busy sample among {profile.total}: every stack shown is asleep")
    return icicle_svg(shown, f"{what}: {state} at {rate} Hz; Python frames warm, native cool")
