"""``scripts/setup`` leaves alone every Orthanc that is not Debian's own service.

Debian's init script stops its service with ``start-stop-daemon --exec /usr/sbin/Orthanc``, which
matches every Orthanc on the machine: a second tenant's archive, a colleague's test server. Setup
must stop only the service's own process (its systemd unit, or the pid its init script recorded,
when that process runs Debian's configuration in ``/etc/orthanc``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testkit.orthanc_process import DROP, REPO, OrthancProcess, Overrides

DEBIAN_PIDFILE = Path("/run/orthanc.pid")


@pytest.fixture
def unrelated_orthanc(tmp_path: Path) -> Iterator[OrthancProcess]:
    """A plain Orthanc from /usr/sbin/Orthanc on free ports, with no plugin of ours."""
    overrides: Overrides = {
        "archive.json": DROP, "dicomweb.json": DROP,
        "orthanc.json": {"Plugins": [], "PythonScript": DROP, "PythonVerbose": DROP,
                         "Name": "Unrelated Orthanc"},
    }
    proc = OrthancProcess(tmp_path / "unrelated", overrides=overrides, ready_path="/system",
                          ready_statuses=(200,), new_session=True)
    with proc:
        yield proc


def _setup() -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "scripts" / "setup")], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def _answers(proc: OrthancProcess) -> bool:
    return requests.get(proc.url + "/system", timeout=10).status_code == 200


def test_setup_leaves_an_unrelated_orthanc_running(unrelated_orthanc: OrthancProcess) -> None:
    run = _setup()
    assert run.returncode == 0, run.stderr[-3000:]
    assert unrelated_orthanc.process is not None and unrelated_orthanc.process.poll() is None
    assert _answers(unrelated_orthanc)


def test_a_pidfile_naming_an_unrelated_orthanc_is_not_obeyed(
        unrelated_orthanc: OrthancProcess) -> None:
    """Even where Debian's pidfile names it (a stale pidfile, a reused pid), an Orthanc that does
    not run Debian's /etc/orthanc configuration is not stopped."""
    if DEBIAN_PIDFILE.exists() or Path("/run/systemd/system").is_dir():
        pytest.skip("Debian's own orthanc service is managed on this machine; its pidfile stays")
    assert unrelated_orthanc.pid is not None
    DEBIAN_PIDFILE.write_text(f"{unrelated_orthanc.pid}\n")
    try:
        run = _setup()
    finally:
        DEBIAN_PIDFILE.unlink(missing_ok=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert unrelated_orthanc.process is not None and unrelated_orthanc.process.poll() is None
    assert _answers(unrelated_orthanc)
    assert os.path.exists(f"/proc/{unrelated_orthanc.pid}")
