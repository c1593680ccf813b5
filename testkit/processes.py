"""Child processes the tools and tests start (Chromium, storescp …)."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited after ``timeout`` seconds.

    Nothing happens to a process that has already exited; either way it is reaped.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
