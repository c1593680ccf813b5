"""``/api/quarantine`` over real SQLite databases and a real spool folder, Orthanc absent.

The re-ingest into a real Orthanc is in tests/integration/test_quarantine_api.py; here: the JSON,
filters, tags, download, discard, and the errors (problem+json).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from pydicom.dataelem import DataElement

from archive_state import quarantine_spool as spool
from archive_state.quarantine import QuarantineIndex
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo

from ._api_env import Env, make_env

PATIENT = PatientInfo("张^伟", "Q-P1", "19620418", "M")


def broken_ct(seed: int) -> bytes:
    ds = synthetic.ct_volume(1, 16, 16, patient=PATIENT, study=StudyInfo(), seed=seed)[0]
    ds[0x00280010] = DataElement(0x00280010, "SS", 16)
    return synthetic.to_bytes(ds)


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture()
def index(env: Env) -> QuarantineIndex:
    assert env.deps.quarantine is not None
    return env.deps.quarantine


@pytest.fixture()
def client(env: Env) -> Iterator[TestClient]:
    with TestClient(env.app(), headers=env.admin_headers) as c:
        yield c


def put(index: QuarantineIndex, data: bytes, transport: str = "dimse",
        code: str = "pixel-vr") -> str:
    ds = dcmread(io.BytesIO(data), force=True)
    return spool.write(index.folder, data, {
        "transport": transport, "remote": {"calling_aet": "CT1", "ip": "10.1.2.3"},
        "reasons": [{"code": code, "tag": "(0028,0010)", "message": "Rows has VR SS, not US"}],
        "patient_id": PATIENT.patient_id, "patient_name": PATIENT.name,
        "sop_instance_uid": str(ds.SOPInstanceUID)})


def test_list_imports_the_spool_and_counts_reasons(index: QuarantineIndex,
                                                   client: TestClient) -> None:
    first = put(index, broken_ct(1))
    second = put(index, broken_ct(2), transport="stow", code="uid-syntax")
    response = client.get("/api/quarantine")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2 and {i["id"] for i in body["items"]} == {first, second}
    assert body["reasonCounts"] == {"pixel-vr": 1, "uid-syntax": 1}
    item = next(i for i in body["items"] if i["id"] == first)
    assert item["patientName"] == "张^伟" and item["status"] == "held"
    assert item["remote"] == {"calling_aet": "CT1", "ip": "10.1.2.3"}
    assert item["reasons"][0] == {"code": "pixel-vr", "tag": "(0028,0010)",
                                  "message": "Rows has VR SS, not US"}
    stow = client.get("/api/quarantine", params={"transport": "stow"}).json()
    assert [i["id"] for i in stow["items"]] == [second]
    assert client.get("/api/quarantine", params={"reason": "pixel-vr"}).json()["total"] == 1
    assert client.get("/api/quarantine", params={"patient": "张"}).json()["total"] == 2


def test_bad_filters_are_400_problems(client: TestClient) -> None:
    naive = client.get("/api/quarantine", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400
    assert naive.headers["content-type"] == "application/problem+json"
    assert "time zone" in naive.json()["detail"]
    assert client.get("/api/quarantine", params={"transport": "fax"}).status_code == 400
    assert client.get("/api/quarantine", params={"status": "lost"}).status_code == 400


def test_detail_shows_the_tags_and_download_gives_the_bytes(index: QuarantineIndex,
                                                            client: TestClient) -> None:
    data = broken_ct(3)
    entry = put(index, data)
    detail = client.get(f"/api/quarantine/{entry}")
    assert detail.status_code == 200, detail.text
    tags = {t["tag"]: t for t in detail.json()["tags"]}
    assert tags["(0028,0010)"]["vr"] == "SS" and tags["(0028,0010)"]["value"] == "16"
    assert tags["(0010,0010)"]["value"] == "张^伟"
    assert detail.json()["tagsError"] is None
    download = client.get(f"/api/quarantine/{entry}/file")
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "application/dicom"
    uid = str(dcmread(io.BytesIO(data)).SOPInstanceUID)
    assert download.headers["content-disposition"] == f'attachment; filename="{uid}.dcm"'


def test_discard_deletes_the_bytes_and_keeps_the_row(index: QuarantineIndex,
                                                     client: TestClient) -> None:
    entry = put(index, broken_ct(4))
    client.get("/api/quarantine")
    gone = client.delete(f"/api/quarantine/{entry}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "discarded"
    assert gone.json()["statusBy"] == "unit-tests"
    assert not spool.data_path(index.folder, entry).exists()
    listed = client.get("/api/quarantine", params={"status": "discarded"}).json()
    assert [i["id"] for i in listed["items"]] == [entry]
    assert client.get(f"/api/quarantine/{entry}").json()["tagsError"] == "the bytes are gone"
    again = client.post(f"/api/quarantine/{entry}/reingest")
    assert again.status_code == 409 and "discarded" in again.json()["detail"]
    assert client.get(f"/api/quarantine/{entry}/file").status_code == 409


def test_unknown_entries_and_bad_fixes(index: QuarantineIndex, client: TestClient) -> None:
    for path in (f"/api/quarantine/{'a' * 64}", "/api/quarantine/nope",
                 f"/api/quarantine/{'a' * 64}/file"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    entry = put(index, broken_ct(5))
    client.get("/api/quarantine")
    empty = client.post(f"/api/quarantine/{entry}/fix", json={})
    assert empty.status_code == 422 and "at least one" in empty.json()["detail"]
    wrong = client.post(f"/api/quarantine/{entry}/fix", json={"edits": {"(0028,0010)": "8.5"}})
    assert wrong.status_code == 422 and "VR" in wrong.json()["detail"]
    extra = client.post(f"/api/quarantine/{entry}/fix", json={"set": {}})
    assert extra.status_code == 422


def test_reingest_without_orthanc_is_503_and_the_entry_stays_held(
        index: QuarantineIndex, client: TestClient) -> None:
    entry = put(index, broken_ct(6))
    fixed = client.post(f"/api/quarantine/{entry}/fix",
                        json={"edits": {"(0028,0010)": {"vr": "US", "value": "16"}}})
    assert fixed.status_code == 503, fixed.text
    assert client.get(f"/api/quarantine/{entry}").json()["status"] == "held"


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/quarantine", "/api/quarantine/{entry_id}", "/api/quarantine/{entry_id}/file",
            "/api/quarantine/{entry_id}/fix", "/api/quarantine/{entry_id}/reingest"} <= set(paths)
    assert "delete" in paths["/api/quarantine/{entry_id}"]


def test_download_and_discard_are_audited_with_the_patient(
        env: Env, index: QuarantineIndex, client: TestClient) -> None:
    data = broken_ct(7)  # its UIDs are new at each call
    entry = put(index, data)
    client.get("/api/quarantine")
    assert client.get(f"/api/quarantine/{entry}/file").status_code == 200
    assert client.delete(f"/api/quarantine/{entry}").status_code == 200
    done = [(e.action, e.detail.get("operation")) for e in env.audit.events
            if e.detail.get("object") == "quarantine-entry"]
    assert done == [("download", None), ("delete", "discard")]
    download, discard = (e for e in env.audit.events if e.detail.get("entry") == entry)
    assert (download.actor, download.actor_kind, download.tenant) == ("unit-tests", "api-key",
                                                                      "default")
    assert (download.patient_id, download.patient_name) == ("Q-P1", "张^伟")
    assert download.detail["bytes"] == len(data)
    assert discard.resource == f"DELETE /api/quarantine/{entry}"
    assert discard.outcome == "success" and discard.session is not None
