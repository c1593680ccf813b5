"""``/api/quarantine`` on the whole archive (testkit.stack.Stack), through the door.

Entries are put in the running archive's spool with the writer the plugin uses
(:func:`archive_state.quarantine_spool.write`); the worker imports them without any API call; a
fix and a re-ingest go to the real Orthanc (``POST /instances`` with the internal credential)
and the instance is then found by QIDO-RS through the door. The "quarantined again" path needs
the ingest gate in the plugin and is tested with it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom import dcmread
from pydicom.dataelem import DataElement

from archive_state import quarantine_spool as spool
from archive_state.db import make_engine
from archive_state.quarantine import QuarantineIndex
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit.stack import Stack

pytestmark = pytest.mark.integration

PATIENT = PatientInfo("欧阳^娜", "QAPI-P1", "19800101", "F")
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("quarantine-api")) as running:
        running.wait_healthy()
        yield running


def ct(seed: int, *, broken: bool) -> bytes:
    ds = synthetic.ct_volume(1, 16, 16, patient=PATIENT, study=StudyInfo(), seed=seed)[0]
    if broken:
        ds[0x00280010] = DataElement(0x00280010, "SS", 16)
    return synthetic.to_bytes(ds)


def quarantine(stack: Stack, data: bytes, code: str) -> str:
    ds = dcmread(io.BytesIO(data), force=True)
    return spool.write(spool.folder_of(stack.state_dir), data, {
        "tenant": "default", "transport": "dimse",
        "remote": {"calling_aet": "CT_ROOM_2", "called_aet": "ARCHIVE", "ip": "127.0.0.1"},
        "reasons": [{"code": code, "tag": "(0028,0010)", "message": "Rows has VR SS, not US"}],
        "sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": str(ds.SOPInstanceUID),
        "study_instance_uid": str(ds.StudyInstanceUID),
        "series_instance_uid": str(ds.SeriesInstanceUID), "patient_id": PATIENT.patient_id,
        "patient_name": PATIENT.name, "transfer_syntax": str(ds.file_meta.TransferSyntaxUID)})


def found_by_qido(stack: Stack, data: bytes) -> list[dict[str, Any]]:
    ds = dcmread(io.BytesIO(data), force=True)
    response = stack.http.get(f"{stack.url}/dicom-web/instances",
                            params={"SOPInstanceUID": str(ds.SOPInstanceUID)}, timeout=30)
    assert response.status_code in (200, 204), response.text
    return list(response.json()) if response.status_code == 200 and response.content else []


def test_the_worker_imports_an_entry_without_an_api_call(stack: Stack) -> None:
    entry = quarantine(stack, ct(11, broken=True), "pixel-vr")
    engine = make_engine(f"sqlite:///{stack.state_dir / 'tenant-default.sqlite'}")
    try:
        rows = QuarantineIndex(engine, "default", Path("/nonexistent"))  # reads rows only
        deadline = time.monotonic() + TIMEOUT
        while entry not in {e.id for e in rows.list(limit=1000)[0]}:
            assert time.monotonic() < deadline, "the worker did not import the entry"
            time.sleep(0.2)
        assert rows.get(entry).patient_name == PATIENT.name
    finally:
        engine.dispose()


def test_list_detail_and_download_through_the_door(stack: Stack) -> None:
    data = ct(12, broken=True)
    entry = quarantine(stack, data, "pixel-vr")
    listed = stack.http.get(f"{stack.url}/api/quarantine", params={"patient": "欧阳"}, timeout=10)
    assert listed.status_code == 200, listed.text
    item = next(i for i in listed.json()["items"] if i["id"] == entry)
    assert item["patientName"] == "欧阳^娜" and item["remote"]["calling_aet"] == "CT_ROOM_2"
    assert listed.json()["reasonCounts"]["pixel-vr"] >= 1
    detail = stack.http.get(f"{stack.url}/api/quarantine/{entry}", timeout=10).json()
    rows = next(t for t in detail["tags"] if t["tag"] == "(0028,0010)")
    assert (rows["keyword"], rows["vr"], rows["value"]) == ("Rows", "SS", "16")
    download = stack.http.get(f"{stack.url}/api/quarantine/{entry}/file", timeout=10)
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "application/dicom"


def test_a_fix_is_stored_by_orthanc_and_found_by_qido(stack: Stack) -> None:
    data = ct(13, broken=True)
    entry = quarantine(stack, data, "pixel-vr")
    assert found_by_qido(stack, data) == []
    fixed = stack.http.post(f"{stack.url}/api/quarantine/{entry}/fix", timeout=30, json={
        "edits": {"(0028,0010)": {"vr": "US", "value": "16"}, "(0010,0020)": "QAPI-P1-FIXED"}})
    assert fixed.status_code == 200, fixed.text
    body = fixed.json()
    assert body["result"] == "stored" and body["orthancStatus"] == "Success"
    assert body["entry"]["status"] == "reingested"
    assert body["entry"]["reingestedAs"] == body["orthancId"]
    assert body["entry"]["lastAttempt"]["kind"] == "fix"
    tags = requests.get(f"{stack.orthanc_url}/instances/{body['orthancId']}/simplified-tags",
                        auth=stack.orthanc_auth, timeout=10).json()
    assert tags["PatientID"] == "QAPI-P1-FIXED" and tags["PatientName"] == "欧阳^娜"
    assert tags["Rows"] == "16"
    assert len(found_by_qido(stack, data)) == 1
    # What the viewer asks next (its wadoRoot is the door's /dicom-web): the series metadata
    # lists the instance, and its frame renders.
    ds = dcmread(io.BytesIO(data), force=True)
    series = (f"{stack.url}/dicom-web/studies/{ds.StudyInstanceUID}"
              f"/series/{ds.SeriesInstanceUID}")
    metadata = requests.get(f"{series}/metadata", timeout=30)
    assert metadata.status_code == 200
    assert [i["00080018"]["Value"] for i in metadata.json()] == [[str(ds.SOPInstanceUID)]]
    frame = requests.get(f"{series}/instances/{ds.SOPInstanceUID}/frames/1/rendered",
                         headers={"Accept": "image/jpeg"}, timeout=30)
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    again = stack.http.post(f"{stack.url}/api/quarantine/{entry}/reingest", timeout=30)
    assert again.status_code == 409  # a re-ingested entry is done with


def test_reingest_as_received_and_discard(stack: Stack) -> None:
    valid = ct(14, broken=False)
    entry = quarantine(stack, valid, "rule-since-relaxed")
    done = stack.http.post(f"{stack.url}/api/quarantine/{entry}/reingest", timeout=30)
    assert done.status_code == 200, done.text
    assert done.json()["result"] == "stored" and done.json()["entry"]["status"] == "reingested"
    assert len(found_by_qido(stack, valid)) == 1
    assert spool.data_path(spool.folder_of(stack.state_dir), entry).read_bytes() == valid
    gone = stack.http.delete(f"{stack.url}/api/quarantine/{entry}", timeout=10)
    assert gone.status_code == 200 and gone.json()["status"] == "discarded"
    assert not spool.data_path(spool.folder_of(stack.state_dir), entry).exists()
    assert stack.http.get(f"{stack.url}/api/quarantine/{entry}/file", timeout=10).status_code == 409
