"""scripts/demo-data against a real archive, and against peers that refuse or are not there."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom import dcmread
from pynetdicom import AE, AllStoragePresentationContexts, evt

from testkit.orthanc_process import REPO, free_port
from testkit.stack import Stack

pytestmark = pytest.mark.integration

DEMO_DATA = REPO / "scripts" / "demo-data"
PATIENTS = {"CT": "张^伟", "DX": "张^伟", "MR": "王^芳", "US": "Li^Na=李^娜"}
DESCRIPTIONS = {"CT": "胸部CT增强扫描", "DX": "胸部DR正位", "MR": "头颅MR平扫", "US": "经胸超声心动图"}
STUDY_LINE = re.compile(r"^(?P<uid>[0-9.]+)  (?P<modality>[A-Z]{2})  (?P<count>\d+) instances?  "
                        r"(?P<description>.+)  (?P<patient>\S+)$")


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def studies(self) -> dict[str, tuple[str, int]]:
        """Modality -> (StudyInstanceUID, instance count) as printed on stdout."""
        found = {}
        for line in self.stdout.splitlines():
            match = STUDY_LINE.match(line)
            if match:
                found[match["modality"]] = (match["uid"], int(match["count"]))
        return found


def demo_data(*args: str, timeout: float = 120) -> Run:
    started = time.monotonic()
    done = subprocess.run([str(DEMO_DATA), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def loaded(archive: Stack) -> Run:
    """The whole demo set, sent once by STOW-RS the way a user would."""
    run = demo_data("--url", archive.url)
    assert run.returncode == 0, f"{run.stderr}\n--- Orthanc log ---\n{archive.log_text()[-3000:]}"
    return run


def find_study(archive: Stack, uid: str) -> str:
    response = requests.post(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/tools/find", timeout=10,
                             json={"Level": "Study", "Query": {"StudyInstanceUID": uid}})
    response.raise_for_status()
    ids = response.json()
    assert len(ids) == 1, f"{uid}: {ids}"
    return str(ids[0])


def qido_studies(archive: Stack, root: str = "/dicom-web", **query: str) -> list[dict[str, Any]]:
    # One includefield per attribute: this Orthanc gets "a%2Cb" undecoded and would not split it.
    fields = [("includefield", "00081030"), ("includefield", "00201208")]
    response = archive.http.get(f"{archive.url}{root}/studies", timeout=10,
                            params=[*query.items(), *fields],
                            headers={"Accept": "application/dicom+json"})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json() if response.content else []
    return found


def uid_of(study: dict[str, Any]) -> str:
    return str(study["0020000D"]["Value"][0])


# --- against the real archive -------------------------------------------------------------------


def test_demo_data_loads_every_study_quickly(loaded: Run, archive: Stack) -> None:
    studies = loaded.studies()
    assert set(studies) == {"CT", "DX", "MR", "US"}
    assert studies["CT"][1] >= 200
    assert loaded.seconds < 45, f"demo-data took {loaded.seconds:.1f} s"
    assert f"{studies['CT'][1]}/{studies['CT'][1]}" in loaded.stderr, "progress per study"
    for uid, _ in studies.values():
        assert f"{archive.url}/ohif/viewer?StudyInstanceUIDs={uid}" in loaded.stdout


def test_studies_arrived_with_their_instances(loaded: Run, archive: Stack) -> None:
    for modality, (uid, count) in loaded.studies().items():
        study_id = find_study(archive, uid)
        statistics = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/studies/{study_id}/statistics", timeout=10).json()
        assert int(statistics["CountInstances"]) == count, modality
        study = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/studies/{study_id}", timeout=10).json()
        assert len(study["Series"]) == 1
        assert study["MainDicomTags"]["StudyDescription"] == DESCRIPTIONS[modality]
        assert study["PatientMainDicomTags"]["PatientName"] == PATIENTS[modality]


def test_cine_keeps_its_frames(loaded: Run, archive: Stack) -> None:
    uid, _ = loaded.studies()["US"]
    instances = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/studies/{find_study(archive, uid)}/instances",
                             timeout=10).json()
    tags = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/instances/{instances[0]['ID']}/simplified-tags",
                        timeout=10).json()
    assert int(tags["NumberOfFrames"]) == 40
    assert float(tags["FrameTime"]) > 0 and tags["PhotometricInterpretation"] == "RGB"


def test_find_by_chinese_patient_name(loaded: Run, archive: Stack) -> None:
    studies = loaded.studies()
    for name in ("张^伟", "张*"):
        response = requests.post(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/tools/find", timeout=10, json={
            "Level": "Study", "Expand": True, "Query": {"PatientName": name}})
        response.raise_for_status()
        found = {s["MainDicomTags"]["StudyInstanceUID"] for s in response.json()}
        assert {studies["CT"][0], studies["DX"][0]} <= found, name


def test_qido_returns_the_utf8_names(loaded: Run, archive: Stack) -> None:
    studies = loaded.studies()
    for modality, (uid, count) in studies.items():
        [study] = qido_studies(archive, StudyInstanceUID=uid)
        name = study["00100010"]["Value"][0]
        alphabetic, _, ideographic = PATIENTS[modality].partition("=")
        assert name["Alphabetic"] == alphabetic
        assert name.get("Ideographic", "") == ideographic
        assert study["00081030"]["Value"][0] == DESCRIPTIONS[modality]
        assert int(study["00201208"]["Value"][0]) == count
    by_patient = {uid_of(s): s for s in qido_studies(archive, PatientID="SYN20240001")}
    assert {studies["CT"][0], studies["DX"][0]} <= set(by_patient)
    assert by_patient[studies["CT"][0]]["00100010"]["Value"][0]["Alphabetic"] == "张^伟"


def test_qido_matches_a_chinese_patient_name(loaded: Run, archive: Stack) -> None:
    """Through the API's decoding route: /dicom-web itself cannot (see archive_api.qido)."""
    studies = loaded.studies()
    found = {uid_of(s) for s in qido_studies(archive, "/api/dicom-web", PatientName="张^伟")}
    assert {studies["CT"][0], studies["DX"][0]} <= found


def test_dimse_c_store_path(archive: Stack) -> None:
    run = demo_data("--dicom", f"127.0.0.1:{archive.dicom_port}", "--aet", archive.aet,
                    "--url", archive.url, "--only", "MR")
    assert run.returncode == 0, run.stderr
    uid, count = run.studies()["MR"]
    study_id = find_study(archive, uid)
    statistics = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/studies/{study_id}/statistics", timeout=10).json()
    assert int(statistics["CountInstances"]) == count == 24
    study = requests.get(auth=archive.orthanc_auth, url=f"{archive.orthanc_url}/studies/{study_id}", timeout=10).json()
    assert study["PatientMainDicomTags"]["PatientName"] == "王^芳"


# --- archive missing or refusing ------------------------------------------------------------------


def test_unreachable_archive_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = demo_data("--url", url, timeout=60)
    assert run.returncode == 1
    assert url in run.stderr and "cannot reach" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.seconds < 20, "fails before generating anything"


def test_unreachable_dicom_port_is_a_clear_error() -> None:
    port = free_port()
    run = demo_data("--dicom", f"127.0.0.1:{port}", "--aet", "NOBODY", timeout=60)
    assert run.returncode == 1
    assert f"NOBODY@127.0.0.1:{port}" in run.stderr and "Traceback" not in run.stderr


class RefusingStow(BaseHTTPRequestHandler):
    """A DICOMweb peer that answers QIDO but refuses every stored instance (PS3.18 10.5.3)."""

    def do_GET(self) -> None:
        self.reply(200, [])

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        failed = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.4"]},
                  "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
                  "00081197": {"vr": "US", "Value": [0xA700]}}
        self.reply(409, {"00081198": {"vr": "SQ", "Value": [failed]}})

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_stow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingStow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_instance_over_stow_is_a_clear_error(refusing_stow: str) -> None:
    run = demo_data("--url", refusing_stow, "--only", "MR", timeout=60)
    assert run.returncode == 1
    assert f"{refusing_stow}/dicom-web refused" in run.stderr
    assert "1.2.3.4" in run.stderr and "0xA700" in run.stderr
    assert "Traceback" not in run.stderr


def test_refused_instance_over_dimse_is_a_clear_error() -> None:
    ae = AE(ae_title="REFUSER")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, lambda event: 0xA700)])
    assert server is not None  # block=False returns the running server
    try:
        port = server.server_address[1]
        run = demo_data("--dicom", f"127.0.0.1:{port}", "--aet", "REFUSER", "--only", "DX",
                        timeout=60)
    finally:
        server.shutdown()
    assert run.returncode == 1
    assert f"REFUSER@127.0.0.1:{port} refused" in run.stderr and "0xA700" in run.stderr


def test_out_writes_files_instead_of_sending(tmp_path: Path) -> None:
    run = demo_data("--out", str(tmp_path), "--only", "MR", "DX", timeout=60)
    assert run.returncode == 0, run.stderr
    studies = run.studies()
    for modality, (uid, count) in studies.items():
        files = sorted((tmp_path / uid).glob("*.dcm"))
        assert len(files) == count
        ds = dcmread(files[0])
        assert ds.StudyInstanceUID == uid and str(ds.PatientName) == PATIENTS[modality]
        assert str(tmp_path / uid) in run.stdout
