"""The quick-ACK shim in the running archive (orthanc-plugins/native/quick_ack.c), on and off.

With ``Archive.Dicom.SuppressDelayedAck`` on (the shipped default) the launcher preloads the shim
into Orthanc; ``/api/health`` must say so from Orthanc's own process, and while DCMTK's storescu
sends (Nagle on: no ``TCP_NODELAY`` in its environment) Orthanc must set ``TCP_QUICKACK`` on the
DICOM connection, which ``strace`` attached to Orthanc sees. With the key false the library is
not in Orthanc's process, health does not list the feature and no ``TCP_QUICKACK`` is set. In
both, C-STORE, C-FIND, C-GET and C-MOVE work. Nothing is timed: speed is the benchmark's
business (``scripts/bench``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.stack import Stack

pytestmark = pytest.mark.integration

FEATURE = "dicom-quick-ack"
LIBRARY = "libarchive-quick-ack.so"
CALLING_AET = "QUICKACK"


@dataclass
class Case:
    on: bool
    archive: Stack
    http: requests.Session


@pytest.fixture(scope="module", params=["on", "off"])
def case(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    """The session's archive (shipped configuration: on), or one with the key false."""
    if request.param == "on":
        yield Case(True, request.getfixturevalue("archive"), request.getfixturevalue("http"))
        return
    stack = Stack(tmp_path_factory.mktemp("quick-ack-off"), overrides={
        "archive.json": {"Archive": {"Dicom": {"SuppressDelayedAck": False}}}}).start()
    session = requests.Session()
    session.auth = stack.orthanc_auth
    try:
        yield Case(False, stack, session)
    finally:
        session.close()
        stack.stop()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").partition("=")[::2] for e in raw if b"=" in e)


def test_health_reports_what_orthancs_process_holds(case: Case) -> None:
    doc = case.archive.wait_healthy()
    pid = case.archive.program_pid("orthanc")
    loaded = LIBRARY in Path(f"/proc/{pid}/maps").read_text()
    orthanc = next(s for s in doc["services"] if s["name"] == "orthanc")
    assert doc["status"] == "ok", doc
    assert loaded is case.on
    assert environ_of(pid)["ARCHIVE_QUICKACK"] == ("1" if case.on else "0")
    assert (FEATURE in doc["features"]) is case.on, doc["features"]
    assert orthanc["detail"].endswith("quick-ACK active" if case.on else "quick-ACK not-loaded")


def study_files(folder: Path, token: str) -> tuple[str, list[Path]]:
    patient = PatientInfo("QUICK^ACK", f"QA-{token}", "19700101", "F")
    study = StudyInfo(date="20240102", time="101500", accession=f"Q{token}",
                      description="quick ack")
    datasets = synthetic.ct_volume(4, 128, 128, patient=patient, study=study, seed=7)
    return str(datasets[0].StudyInstanceUID), synthetic.write_files(datasets, folder)


@pytest.fixture()
def strace_orthanc(case: Case, tmp_path: Path) -> Iterator[Path]:
    """strace attached to every thread of Orthanc, recording its setsockopt calls."""
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: scripts/setup --test installs it")
    out = tmp_path / "strace.txt"
    errors = tmp_path / "strace.err"
    pid = case.archive.program_pid("orthanc")
    with errors.open("wb") as err:
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=setsockopt", "-o", str(out),
                                   "-p", str(pid)], stderr=err)
    try:
        deadline = time.monotonic() + 20
        # strace writes each attached thread's first traced call (or nothing) to -o; it is
        # attached once /proc says every thread of Orthanc has a tracer.
        while time.monotonic() < deadline:
            assert tracer.poll() is None, errors.read_text()
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
            traced = [t for t in tasks if _tracer(t) == tracer.pid]
            if tasks and len(traced) == len(tasks):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"strace did not attach to Orthanc: {errors.read_text()}")
        yield out
    finally:
        tracer.terminate()
        tracer.wait(timeout=20)


def _tracer(task: Path) -> int:
    try:
        status = (task / "status").read_text()
    except OSError:
        return -1
    found = re.search(r"^TracerPid:\s*(\d+)", status, re.M)
    return int(found.group(1)) if found else -1


def test_orthanc_sets_quickack_while_storescu_sends_with_nagle_on(
        case: Case, tmp_path: Path, strace_orthanc: Path) -> None:
    _, files = study_files(tmp_path / "files", dd.unique_token())
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    subprocess.run(["storescu", "-aet", CALLING_AET, "-aec", case.archive.aet, "127.0.0.1",
                    str(case.archive.dicom_port), *map(str, files)],
                   env=env, check=True, capture_output=True, timeout=120)
    # strace writes each call as it happens, and Orthanc answers a C-STORE after reading it.
    calls = strace_orthanc.read_text()
    quick_acks = calls.count("TCP_QUICKACK, [1]")
    if case.on:
        assert quick_acks >= len(files), calls[-2000:]
    else:
        assert quick_acks == 0, calls[-2000:]


def test_dimse_store_find_get_move(case: Case, tmp_path: Path) -> None:
    archive = case.archive
    study_uid, files = study_files(tmp_path / "files", dd.unique_token())
    dcmtk.run("storescu", "-aet", CALLING_AET, "-aec", archive.aet, "127.0.0.1",
              archive.dicom_port, *files)
    expected = {str(pydicom.dcmread(p).SOPInstanceUID) for p in files}

    found = tmp_path / "found"
    found.mkdir()
    dcmtk.run("findscu", "-S", "-X", "-od", found, "-aet", CALLING_AET, "-aec", archive.aet,
              *dcmtk.keys(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid,
                          NumberOfStudyRelatedInstances=""),
              "127.0.0.1", archive.dicom_port)
    (answer,) = [pydicom.dcmread(p) for p in found.iterdir()]
    assert int(answer.NumberOfStudyRelatedInstances) == len(files)

    got = tmp_path / "got"
    got.mkdir()
    result = dcmtk.run("getscu", "-S", "-aet", CALLING_AET, "-aec", archive.aet,
                       *dcmtk.keys(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid),
                       "-od", got, "127.0.0.1", archive.dicom_port)
    assert {str(pydicom.dcmread(p).SOPInstanceUID) for p in got.iterdir()} == expected, result.output

    with dcmtk.StoreScp(tmp_path / "moved", aet="QUICKACKSCP") as scp:
        with archive.known_modality("quick-ack-scp", scp.aet, scp.port):
            result = dcmtk.run("movescu", "-S", "-aet", CALLING_AET, "-aec", archive.aet,
                               "-aem", scp.aet,
                               *dcmtk.keys(QueryRetrieveLevel="STUDY", StudyInstanceUID=study_uid),
                               "127.0.0.1", archive.dicom_port)
        moved = {str(pydicom.dcmread(p).SOPInstanceUID) for p in scp.received()}
    assert moved == expected, result.output
