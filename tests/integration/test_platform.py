"""The Orthanc platform the suite runs on is the one asked for, and runs as a plain Orthanc would.

``ARCHIVE_PLATFORM`` (:mod:`testkit.platform`) picks Debian bookworm's Orthanc 1.10.1 or Debian
trixie's 1.12.x, which ``scripts/orthanc-trixie`` runs from a debootstrap root in a private mount
namespace. These tests hold both to the same contract: the Orthanc that answers is the platform's
generation with our Python plugin loaded, its PID is the one the runner holds (so signals reach
Orthanc, not a wrapper), the thread-stack shim is in it, SIGTERM stops it with exit status 0, and
none of the wrapper's mounts is visible on the host.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from archive_state.db import migrate
from testkit import platform as platforms
from testkit.archive_process import THREAD_STACK_SHIM, ArchiveProcess

#: (Orthanc, Python plugin) release lines of each platform's Debian packages.
GENERATIONS = {"bookworm": ((1, 10), (4,)), "trixie": ((1, 12), (5,))}


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@pytest.fixture(scope="module")
def platform() -> platforms.Platform:
    return platforms.current()


@pytest.fixture()
def own_archive(tmp_path: Path) -> Iterator[ArchiveProcess]:
    """An archive of this test's own, to stop by signal without disturbing the session's.

    Its state database is migrated first, as the launcher does (the plugin never migrates); the
    plugin has no route, so readiness is Orthanc's own ``/system``.
    """
    proc = ArchiveProcess(tmp_path, ready_path="/system", ready_statuses=(200,))
    (proc.data_dir / "state").mkdir(parents=True)
    migrate(f"sqlite:///{proc.data_dir}/state/tenant-default.sqlite", "state")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_orthanc_and_its_plugins_are_the_platforms(platform: platforms.Platform,
                                                   own_archive: ArchiveProcess) -> None:
    system = requests.get(f"{own_archive.url}/system", timeout=10).json()
    orthanc_line, plugin_line = GENERATIONS[platform.name]
    assert numbers(system["Version"])[:len(orthanc_line)] == orthanc_line, system["Version"]
    assert numbers(system["Version"]) == platform.version("orthanc")
    loaded = requests.get(f"{own_archive.url}/plugins", timeout=10).json()
    assert {"python", "dicom-web", "gdcm"} <= set(loaded), loaded
    python = requests.get(f"{own_archive.url}/plugins/python", timeout=10).json()["Version"]
    assert numbers(python)[:len(plugin_line)] == plugin_line, python
    assert numbers(python) == platform.version("pythonPlugin")
    dicomweb = requests.get(f"{own_archive.url}/plugins/dicom-web", timeout=10).json()["Version"]
    assert numbers(dicomweb) == platform.version("dicomWeb")


def test_the_configured_plugins_exist_on_the_platform(platform: platforms.Platform) -> None:
    for path in platform.plugins.values():
        assert platform.host_path(path).is_file(), f"{path} is not in {platform.root}"


def test_the_runners_pid_is_orthanc_with_the_shim_loaded(platform: platforms.Platform,
                                                         own_archive: ArchiveProcess) -> None:
    pid = own_archive.pid
    assert pid is not None
    exe = Path(f"/proc/{pid}/exe").resolve()
    assert exe == platform.host_path("/usr/sbin/Orthanc").resolve(), exe
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert THREAD_STACK_SHIM.name in maps, "the thread-stack shim is not loaded into Orthanc"


def test_no_mount_of_the_platform_reaches_the_host(platform: platforms.Platform,
                                                   own_archive: ArchiveProcess) -> None:
    if platform.root == Path("/"):
        pytest.skip("a native platform mounts nothing")
    ours = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(platform.root) in line]
    assert ours == [], "the wrapper's mounts leaked into the host's namespace"


def test_sigterm_stops_orthanc_cleanly(own_archive: ArchiveProcess) -> None:
    assert own_archive.process is not None
    own_archive.process.send_signal(signal.SIGTERM)
    code = own_archive.wait_exit(timeout=60)
    assert code == 0, (f"Orthanc exited with {code} on SIGTERM"
                       + (" (SIGSEGV)" if code == -signal.SIGSEGV else "")
                       + "\n" + own_archive.log_text()[-3000:])
