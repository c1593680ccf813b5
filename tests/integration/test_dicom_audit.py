"""The DICOM audit on a real archive (issue 8): DCMTK's echoscu, storescu, findscu, movescu and
getscu, and a stranger refused by ``Archive.Dicom.RefuseUnknownAe``, talk to the archive as
``scripts/serve`` runs it (supervisord; Orthanc with the launcher's log verbosity); the worker's
``audit.dicom-log`` job, enqueued through ``POST /api/jobs`` with ``flush``, turns Orthanc's log
into rows that ``GET /api/audit`` finds by calling AE, action, study, patient and time, and that
the CSV and ATNA exports carry. Runs on the platform ``ARCHIVE_PLATFORM`` names."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk
from testkit import dicom_data as dd
from testkit.stack import Stack

pytestmark = pytest.mark.integration

CALLER = "DIMSETEST"  # a known modality on every test archive (Stack.add_test_callers)
STRANGER = "STRANGER"
DESTINATION = "AUDITDEST"
ECHO_ONLY = "AUDIT_ECHO_ONLY"
k = dcmtk.keys


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    archive = Stack(tmp_path_factory.mktemp("dicom-audit"), overrides={"archive.json": {
        "Archive": {"Security": {"Enabled": True}, "Dicom": {"RefuseUnknownAe": True}}}})
    archive.start()
    try:
        yield archive
    finally:
        archive.stop()


def _run_job(stack: Stack) -> dict[str, Any]:
    made = stack.http.post(f"{stack.url}/api/jobs", timeout=30, json={
        "kind": "audit.dicom-log", "params": {"flush": True}})
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = stack.http.get(f"{stack.url}/api/jobs/{job_id}", timeout=30).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", job
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _search(stack: Stack, **params: str) -> list[dict[str, Any]]:
    answer = stack.http.get(f"{stack.url}/api/audit", params={"limit": "1000", **params},
                            timeout=30)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _rows_until(stack: Stack, wanted: set[str], **params: str) -> dict[str, list[dict[str, Any]]]:
    """Run the job until a row of every action in ``wanted`` is there (a scheduled run of the
    same job may hold the cursor for a moment: that run of ours then writes nothing)."""
    deadline = time.monotonic() + 90
    while True:
        _run_job(stack)
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in _search(stack, **params):
            rows.setdefault(row["action"], []).append(row)
        if wanted <= set(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_every_dimse_operation_is_audited(stack: Stack, tmp_path: Path) -> None:
    began = datetime.now(timezone.utc) - timedelta(seconds=2)
    token = dd.unique_token()
    patient = PatientInfo("审计^测试", f"AUD-{token}", "19800101", "M")
    volume = synthetic.ct_volume(5, 16, 16, patient=patient, study=StudyInfo(), seed=3)
    files = [synthetic.write_file(ds, tmp_path / f"{i}.dcm") for i, ds in enumerate(volume)]
    study = str(volume[0].StudyInstanceUID)
    host, port = "127.0.0.1", stack.dicom_port

    dcmtk.run("echoscu", "-aet", CALLER, "-aec", stack.aet, host, port)
    dcmtk.run("storescu", "-aet", CALLER, "-aec", stack.aet, host, port, *files)
    found = dcmtk.run("findscu", "-v", "-S", "-aet", CALLER, "-aec", stack.aet,
                      *k(QueryRetrieveLevel="STUDY", PatientID=patient.patient_id,
                         StudyInstanceUID=""), host, port)
    assert study in found.output
    with dcmtk.StoreScp(tmp_path / "dest", aet=DESTINATION) as scp, \
            stack.known_modality("audit-dest", DESTINATION, scp.port):
        dcmtk.run("movescu", "-S", "-aet", CALLER, "-aec", stack.aet, "-aem", DESTINATION,
                  *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), host, port)
        assert len(scp.received()) == 5
    (tmp_path / "got").mkdir()
    dcmtk.run("getscu", "-S", "-aet", CALLER, "-aec", stack.aet, "-od", tmp_path / "got",
              *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), host, port)
    assert len(list((tmp_path / "got").iterdir())) == 5
    refused = dcmtk.run("storescu", "-aet", STRANGER, "-aec", stack.aet, host, port, files[0],
                        check=False)
    assert refused.returncode != 0 and "Association Rejected" in refused.output
    stack.add_modality("audit-echo-only", ECHO_ONLY, 104, operations=("echo",))
    not_allowed = dcmtk.run("getscu", "-S", "-aet", ECHO_ONLY, "-aec", stack.aet,
                            "-od", tmp_path / "got", *k(QueryRetrieveLevel="STUDY",
                                                        StudyInstanceUID=study),
                            host, port, check=False)
    assert len(list((tmp_path / "got").iterdir())) == 5, not_allowed.output
    nowhere = dcmtk.run("movescu", "-S", "-aet", CALLER, "-aec", stack.aet, "-aem", "NOWHERE",
                        *k(QueryRetrieveLevel="STUDY", StudyInstanceUID=study), host, port,
                        check=False)
    assert "Failed" in nowhere.output or nowhere.returncode != 0, nowhere.output

    wanted = {"dicom-echo", "dicom-store", "dicom-find", "dicom-move", "dicom-get"}
    rows = _rows_until(stack, wanted, operator=CALLER, **{"from": began.isoformat()})
    assert wanted <= set(rows), rows
    [store] = rows["dicom-store"]
    assert store["detail"]["count"] == 5 and store["outcome"] == "success"
    assert (store["actorKind"], store["sourceIp"], store["detail"]["called_aet"]) == (
        "dicom", "127.0.0.1", stack.aet)
    assert store["tenant"] == "default"
    assert [r["detail"]["count"] for r in rows["dicom-echo"]] == [1]
    assert [r["detail"]["count"] for r in rows["dicom-find"]] == [1]
    moves = {r["outcome"]: r for r in rows["dicom-move"]}
    assert set(moves) == {"success", "failure"}, rows["dicom-move"]
    move = moves["success"]
    assert (move["detail"]["destination_aet"], move["studyUid"], move["patientId"]) == (
        DESTINATION, study, patient.patient_id)
    assert move["detail"]["instances"] == 5
    assert (moves["failure"]["detail"]["destination_aet"], moves["failure"]["detail"]["reason"]) \
        == ("NOWHERE", "unknown-destination")
    [get] = rows["dicom-get"]
    assert (get["studyUid"], get["patientName"], get["detail"]["count"]) == (
        study, patient.name, 1)

    strangers = _rows_until(stack, {"dicom-refused"}, operator=STRANGER,
                            **{"from": began.isoformat()})
    [denied] = strangers["dicom-refused"]
    assert (denied["outcome"], denied["detail"]["operation"], denied["detail"]["reason"]) == (
        "denied", "A-ASSOCIATE", "unknown-ae")
    [get_refused] = _rows_until(stack, {"dicom-refused"}, operator=ECHO_ONLY,
                                **{"from": began.isoformat()})["dicom-refused"]
    assert (get_refused["detail"]["operation"], get_refused["detail"]["reason"]) == (
        "C-GET", "not-allowed")

    # Searchable like every audit row: by action, study, patient; time and outcome.
    assert {r["action"] for r in _search(stack, study=study)} == {"dicom-move", "dicom-get"}
    assert {r["action"] for r in _search(stack, patient=patient.patient_id)} == {
        "dicom-move", "dicom-get"}
    assert sorted(r["actor"] for r in _search(stack, action="dicom-refused", outcome="denied",
                                              **{"from": began.isoformat()})) == [
        ECHO_ONLY, STRANGER]
    later = (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()
    assert _search(stack, operator=CALLER, **{"from": later}) == []

    # Nothing is counted twice: another run adds no row for what was read already.
    _run_job(stack)
    again = _search(stack, operator=CALLER, **{"from": began.isoformat()})
    assert sorted(r["action"] for r in again) == sorted(
        action for action, items in rows.items() for _ in items)

    # The exports carry them.
    csv = stack.http.get(f"{stack.url}/api/audit.csv", timeout=30,
                         params={"operator": CALLER, "from": began.isoformat()})
    assert csv.status_code == 200
    assert "DICOM 接收影像 C-STORE" in csv.content.decode("utf-8-sig")
    xml = stack.http.get(f"{stack.url}/api/audit/atna", timeout=30,
                         params={"operator": CALLER, "action": "dicom-move",
                                 "from": began.isoformat()})
    assert xml.status_code == 200
    assert 'csd-code="110102"' in xml.text and f'UserID="{DESTINATION}"' in xml.text
    assert stack.http.get(f"{stack.url}/api/audit/verify", timeout=60).json()["ok"] is True
    # The verbosity the audit needs writes no patient data into Orthanc's log (query keys are
    # masked by Orthanc's DeidentifyLogs).
    orthanc_log = stack.log_text("orthanc")
    assert "Incoming Store request from AET DIMSETEST" in orthanc_log
    assert patient.patient_id not in orthanc_log and study not in orthanc_log
    assert patient.name not in orthanc_log
