"""The test suite's handle on a real Orthanc with our plugin: :mod:`testkit.orthanc_process`.

Tests start the archive exactly as the benchmark does, from the shipped ``config/`` with
overrides, on free loopback ports, with the thread-stack shim preloaded.
"""

from testkit.orthanc_process import (
    REPO,
    THREAD_STACK_SHIM,
    OrthancProcess as ArchiveProcess,
    StartupFailed,
    free_port,
)

__all__ = ["REPO", "THREAD_STACK_SHIM", "ArchiveProcess", "StartupFailed", "free_port"]
