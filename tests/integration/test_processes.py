"""The process model: a program killed with SIGKILL comes back, nothing acknowledged is lost, and
Ctrl-C stops everything.

Each program (Orthanc, the API service, a worker, nginx) is killed in turn by the PID supervisord
reports. Before each kill DCMTK's storescu stores instances (a C-STORE success is the archive's
acknowledgement); after the restarts every one of them is still there.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.stack import Stack

pytestmark = pytest.mark.integration

PROGRAMS = ("orthanc", "api", "worker-1", "door")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("processes")) as running:
        yield running


@pytest.fixture(scope="module")
def acknowledged() -> list[str]:
    """SOP Instance UIDs the archive acknowledged (C-STORE success), across the tests."""
    return []


def _store(stack: Stack, folder: Path, label: str) -> list[str]:
    token = dd.unique_token()
    series = synthetic.ct_volume(3, 32, 32, patient=PatientInfo("KILL^TEST", f"K-{token}", "19800101", "M"),
                                 study=StudyInfo(date="20240101", accession=f"K{token}", description=label))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n, ds in enumerate(series):
        path = folder / f"{label}-{n}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    dcmtk.run("storescu", "-aet", "KILLTEST", "-aec", stack.aet, "127.0.0.1", stack.dicom_port, *files,
              timeout=120)
    return [str(ds.SOPInstanceUID) for ds in series]


def _wait_restarted(stack: Stack, name: str, old_pid: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    info: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            info = stack.programs()[name]
            if info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid):
                return int(str(info["pid"]))
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{name} not running again after {timeout:.0f} s: {info}\n"
                         + stack.log_text("supervisord")[-2000:])


def _stored_instances(stack: Stack) -> set[str]:
    r = requests.post(stack.orthanc_url + "/tools/find", auth=stack.orthanc_auth, timeout=60,
                      json={"Level": "Instance", "Query": {"PatientID": "K-*"}, "Expand": True,
                            "RequestedTags": ["SOPInstanceUID"]})
    r.raise_for_status()
    return {item["MainDicomTags"]["SOPInstanceUID"] for item in r.json()}


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_killed_program_comes_back(stack: Stack, acknowledged: list[str], name: str,
                                     tmp_path: Path) -> None:
    acknowledged.extend(_store(stack, tmp_path, f"before-{name}"))
    old = stack.program_pid(name)
    os.kill(old, signal.SIGKILL)
    new = _wait_restarted(stack, name, old)
    assert new != old
    health = stack.wait_healthy()
    assert health["status"] == "ok"
    log = stack.log_text("supervisord")
    assert f"exited: {name} (terminated by SIGKILL; not expected)" in log
    assert f"spawned: '{name}' with pid {new}" in log
    # The archive still takes and answers after the restart.
    acknowledged.extend(_store(stack, tmp_path, f"after-{name}"))
    assert stack.http.get(stack.url + "/dicom-web/studies?PatientID=K-*", timeout=30).status_code == 200


def test_nothing_acknowledged_is_lost(stack: Stack, acknowledged: list[str]) -> None:
    assert len(acknowledged) == 3 * 2 * len(PROGRAMS), "run with the kill tests before it"
    assert set(acknowledged) <= _stored_instances(stack)


def test_ctrl_c_stops_every_program_and_the_launcher_exits_0(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "ctrl-c").start()
    try:
        pids = {name: stack.program_pid(name) for name in PROGRAMS}
        assert stack.pid is not None
        os.kill(stack.pid, signal.SIGINT)
        assert stack.wait_exit(timeout=90) == 0
        for name, pid in pids.items():
            assert not Path(f"/proc/{pid}").exists(), f"{name} ({pid}) still runs"
        assert not (stack.run_dir / "nginx.pid").exists()  # nginx exited on its own
        log = stack.log_text("supervisord")
        for name in PROGRAMS:
            assert f"stopped: {name}" in log
        assert log.index("stopped: door") < log.index("stopped: orthanc")
    finally:
        stack.stop()


def test_stack_stop_leaves_no_process(tmp_path: Path) -> None:
    """The test kit's stop (SIGTERM to supervisord) is as clean as Ctrl-C."""
    stack = Stack(tmp_path / "stop").start()
    pids = [stack.program_pid(name) for name in PROGRAMS]
    stack.stop()
    assert stack.process is not None and stack.process.returncode == 0
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]

