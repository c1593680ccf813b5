"""STOW-RS through the door, answered by the API service: every part its own outcome (issue 7.3).

The door sends ``POST /dicom-web/studies[/{study}]`` to the API service, which stores each part
with Orthanc's ``POST /instances`` and answers per PS3.18 §10.5.3. Requests are made with
``dicomweb-client`` and with raw ``requests`` (to build batches and bodies no client would).
What is stored is checked in Orthanc itself (``/tools/lookup`` on its internal port).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
import requests
import uvicorn
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from archive_api.nodelay import NoDelayH11Protocol
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dicom_data as dd
from testkit.orthanc_process import free_port
from testkit.stack import Stack

pytestmark = pytest.mark.integration

DICOM_JSON = "application/dicom+json"
OUT_OF_RESOURCES, DATASET_MISMATCH, CANNOT_UNDERSTAND = 0xA700, 0xA900, 0xC000


@pytest.fixture(scope="module")
def client(archive: Stack) -> DICOMwebClient:
    return DICOMwebClient(url=f"{archive.url}/dicom-web", headers=archive.auth_headers())


def patient(name: str = "吴^敏") -> PatientInfo:
    return PatientInfo(name, f"STOW-{dd.unique_token()}")


def multipart(parts: Sequence[bytes], boundary: str | None = None,
              part_type: str = "application/dicom") -> tuple[bytes, str]:
    boundary = boundary or f"stow-{secrets.token_hex(8)}"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: " + part_type.encode()
                    + b"\r\n\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary="{boundary}"'


def stow(archive: Stack, parts: Sequence[bytes], study: str | None = None,
         **headers: str) -> requests.Response:
    body, content_type = multipart(parts)
    url = f"{archive.url}/dicom-web/studies" + (f"/{study}" if study else "")
    return requests.post(url, data=body, timeout=120,
                         headers={"Content-Type": content_type, "Accept": DICOM_JSON, **headers})


def orthanc_instance(archive: Stack, http: requests.Session, sop_uid: str) -> str | None:
    r = http.post(f"{archive.orthanc_url}/tools/lookup", data=sop_uid, timeout=10)
    r.raise_for_status()
    found = [item["ID"] for item in r.json() if item["Type"] == "Instance"]
    return found[0] if found else None


def answer(response: requests.Response) -> Dataset:
    assert response.headers["content-type"].startswith(DICOM_JSON), response.text[:300]
    return Dataset.from_json(response.json())


def referenced(ds: Dataset) -> set[str]:
    return {str(i.ReferencedSOPInstanceUID) for i in ds.get("ReferencedSOPSequence", [])}


def failures(ds: Dataset) -> dict[str, int]:
    return {str(i.get("ReferencedSOPInstanceUID", "")): int(i.FailureReason)
            for i in ds.get("FailedSOPSequence", [])}


def warnings_of(response: requests.Response) -> list[str]:
    values = response.raw.headers.get_all("Warning") or []
    return [unquote(v) for v in values]


def dx(p: PatientInfo, seed: int, study: StudyInfo | None = None, **kwargs: Any) -> Dataset:
    return synthetic.dx_image(32, 32, patient=p, study=study or StudyInfo(), seed=seed, **kwargs)


# --- the happy path -----------------------------------------------------------------------------

def test_dicomweb_client_batch_is_stored_and_referenced(
        client: DICOMwebClient, archive: Stack, http: requests.Session) -> None:
    study = synthetic.ct_volume(3, 32, 32, patient=patient(), study=StudyInfo(), seed=41)
    response = client.store_instances(study)
    assert not response.get("FailedSOPSequence")
    assert referenced(response) == dd.sop_instance_uids(study)
    # dicomweb-client 0.59 sends "Host: 127.0.0.1" without the port for STOW-RS, so only the
    # path is checked here; test_retrieve_urls_point_at_the_door checks the whole URL.
    assert response.RetrieveURL.endswith(f"/dicom-web/studies/{study[0].StudyInstanceUID}")
    for item in response.ReferencedSOPSequence:
        assert orthanc_instance(archive, http, str(item.ReferencedSOPInstanceUID))
    # stored by the API service through Orthanc's REST API, not by the DICOMweb plugin
    instance = orthanc_instance(archive, http, str(study[0].SOPInstanceUID))
    origin = http.get(f"{archive.orthanc_url}/instances/{instance}/metadata/Origin", timeout=10)
    assert origin.text == "RestApi"


def test_the_door_checks_authorization_and_streams_to_the_api(archive: Stack) -> None:
    token = secrets.token_hex(6)
    ds = dx(patient(), 42)
    body, content_type = multipart([synthetic.to_bytes(ds)])
    r = archive.http.post(f"{archive.url}/dicom-web/studies?t={token}", data=iter([body]),
                      headers={"Content-Type": content_type}, timeout=60)  # chunked upload
    assert r.status_code == 200, r.text
    # nginx writes the access line after the answer has gone out: wait for it (a few seconds).
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in archive.log_text("door-access").splitlines() if token in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1 and '"POST /dicom-web/studies?t=' in lines[0]
    # Checked by the API's authorization when the archive is secured; an open one checks nothing.
    checked = re.search(r"auth=(MISS|HIT|EXPIRED|BYPASS)", lines[0])
    assert bool(checked) is archive.security_enabled, lines[0]


def test_retrieve_urls_point_at_the_door(archive: Stack) -> None:
    ds = dx(patient(), 48)
    got = answer(stow(archive, [synthetic.to_bytes(ds)]))
    study_url = f"{archive.url}/dicom-web/studies/{ds.StudyInstanceUID}"
    assert got.RetrieveURL == study_url
    (item,) = got.ReferencedSOPSequence
    assert item.RetrieveURL == (f"{study_url}/series/{ds.SeriesInstanceUID}"
                                f"/instances/{ds.SOPInstanceUID}")
    assert requests.get(item.RetrieveURL, timeout=30,
                        headers={"Accept": "multipart/related; type=application/dicom"}
                        ).status_code == 200


def test_already_stored_instances_are_referenced_again(archive: Stack) -> None:
    data = synthetic.to_bytes(dx(patient(), 43))
    first, again = stow(archive, [data]), stow(archive, [data])
    assert (first.status_code, again.status_code) == (200, 200)
    assert referenced(answer(first)) == referenced(answer(again))


def test_xml_answer_for_a_client_that_accepts_only_xml(archive: Stack) -> None:
    ds = dx(patient(), 44)
    r = stow(archive, [synthetic.to_bytes(ds)], Accept="application/dicom+xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom+xml")
    assert f"<Value number=\"1\">{ds.SOPInstanceUID}</Value>" in r.text
    assert 'keyword="ReferencedSOPSequence"' in r.text
    assert stow(archive, [synthetic.to_bytes(ds)], Accept="text/html").status_code == 406


@pytest.mark.parametrize("charset", ["ISO_IR 192", "GB18030"])
def test_a_chinese_named_instance_round_trips(charset: str, client: DICOMwebClient) -> None:
    p = patient("欧阳^娜娜")
    ds = dx(p, 45, charset=charset)
    assert ds.SpecificCharacterSet == charset
    response = client.store_instances([ds])
    assert referenced(response) == {str(ds.SOPInstanceUID)}
    got = client.retrieve_instance(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                                   str(ds.SOPInstanceUID))
    assert str(got.PatientName) == "欧阳^娜娜" and got.SpecificCharacterSet == charset
    found = client.search_for_studies(search_filters={"PatientID": p.patient_id})
    assert [Dataset.from_json(f).PatientName for f in found] == ["欧阳^娜娜"]


def test_a_30_mb_instance_is_streamed_and_stored_intact(
        archive: Stack, http: requests.Session) -> None:
    ds = dx(patient(), 46, bits_stored=16)
    ds.Rows = ds.Columns = 3900  # 3900 × 3900 × 2 bytes ≈ 30.4 MB of pixel data
    ds.PixelData = np.arange(3900 * 3900, dtype=np.uint16).tobytes()
    data = synthetic.to_bytes(ds)
    assert len(data) > 30_000_000
    body, content_type = multipart([data])

    def chunks() -> Any:
        for start in range(0, len(body), 1 << 20):
            yield body[start:start + (1 << 20)]

    r = archive.http.post(f"{archive.url}/dicom-web/studies", data=chunks(), timeout=300,
                      headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    instance = orthanc_instance(archive, http, str(ds.SOPInstanceUID))
    stored = http.get(f"{archive.orthanc_url}/instances/{instance}/file", timeout=120).content
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    temp = archive.run_dir / "tmp" / "stow"
    assert not temp.exists() or not list(temp.iterdir())  # nothing left behind


# --- every part its own outcome ----------------------------------------------------------------

def _batch() -> tuple[list[Dataset], Dataset]:
    """[good, PatientID of 300 characters, good, good] in one study (issue 7)."""
    p = patient()
    study = StudyInfo()
    good = [dx(p, 50 + i, study) for i in range(3)]
    bad = dx(p, 60, study)
    bad.PatientID = "X" * 300
    return good, bad


def test_the_batch_with_a_300_char_patient_id_loses_none_of_the_good(
        archive: Stack, http: requests.Session) -> None:
    good, bad = _batch()
    parts = [synthetic.to_bytes(ds) for ds in (good[0], bad, good[1], good[2])]
    r = stow(archive, parts)
    assert r.status_code in (200, 202), r.text
    ds = answer(r)
    good_uids = {str(g.SOPInstanceUID) for g in good}
    assert good_uids <= referenced(ds)
    for uid in good_uids:
        assert orthanc_instance(archive, http, uid), f"{uid} was not stored"
    # the long PatientID is either stored (no gate yet) or failed: never silently absent
    assert (str(bad.SOPInstanceUID) in referenced(ds)) != (str(bad.SOPInstanceUID) in failures(ds))


def test_the_batch_quarantines_the_300_char_patient_id(archive: Stack,
                                                       http: requests.Session) -> None:
    good, bad = _batch()
    parts = [synthetic.to_bytes(ds) for ds in (good[0], bad, good[1], good[2])]
    r = stow(archive, parts)
    ds = answer(r)
    assert r.status_code == 202
    assert referenced(ds) == {str(g.SOPInstanceUID) for g in good}
    assert failures(ds) == {str(bad.SOPInstanceUID): DATASET_MISMATCH}
    assert orthanc_instance(archive, http, str(bad.SOPInstanceUID)) is None
    sha = hashlib.sha256(parts[1]).hexdigest()
    entry = json.loads((archive.state_dir / "quarantine" / f"{sha}.json").read_text())
    assert entry["reasons"]
    (warning,) = warnings_of(r)
    assert "part 2" in warning and f"quarantined as {sha[:12]}" in warning
    assert "VALUE_TOO_LONG (0010,0020)" in warning
    # The quarantine index knows it came by STOW-RS and from where (the gate saw "rest").
    indexed = archive.http.get(f"{archive.url}/api/quarantine/{sha}", timeout=30).json()
    assert indexed["transport"] == "stow" and indexed["remote"] == {"ip": "127.0.0.1"}


def test_a_part_of_another_study_fails_with_0xA900(archive: Stack,
                                                   http: requests.Session) -> None:
    p = patient()
    mine, other = dx(p, 70, StudyInfo()), dx(p, 71, StudyInfo())
    r = stow(archive, [synthetic.to_bytes(mine), synthetic.to_bytes(other)],
             study=str(mine.StudyInstanceUID))
    assert r.status_code == 202
    ds = answer(r)
    assert referenced(ds) == {str(mine.SOPInstanceUID)}
    assert failures(ds) == {str(other.SOPInstanceUID): DATASET_MISMATCH}
    assert orthanc_instance(archive, http, str(other.SOPInstanceUID)) is None
    (warning,) = warnings_of(r)
    assert "part 2" in warning and "not the study of the URL" in warning
    assert ds.RetrieveURL.endswith(f"/dicom-web/studies/{mine.StudyInstanceUID}")


def test_a_part_that_is_not_dicom_fails_and_is_kept(archive: Stack) -> None:
    junk = b"this is not DICOM " + secrets.token_bytes(64)
    good = dx(patient(), 72)
    r = stow(archive, [junk, synthetic.to_bytes(good)])
    assert r.status_code == 202, r.text
    ds = answer(r)
    assert referenced(ds) == {str(good.SOPInstanceUID)}
    assert list(failures(ds).values()) == [CANNOT_UNDERSTAND]
    sha = hashlib.sha256(junk).hexdigest()
    entry = json.loads((archive.state_dir / "quarantine" / f"{sha}.json").read_text())
    # kept by the gate (transport "rest": it sees Orthanc's POST /instances) or, with the gate
    # off, by the STOW-RS service itself
    assert entry["transport"] in ("rest", "stow")
    assert [r["code"] for r in entry["reasons"]] == ["NOT_DICOM"]
    assert (archive.state_dir / "quarantine" / f"{sha}.dcm").read_bytes() == junk
    (warning,) = warnings_of(r)
    assert "quarantine" in warning and sha[:12] in warning


def test_nothing_stored_is_409(archive: Stack) -> None:
    r = stow(archive, [b"not dicom either " + secrets.token_bytes(8)])
    assert r.status_code == 409
    assert list(failures(answer(r)).values()) == [CANNOT_UNDERSTAND]


# --- bad requests ------------------------------------------------------------------------------

def _post(archive: Stack, body: bytes, content_type: str) -> requests.Response:
    return archive.http.post(f"{archive.url}/dicom-web/studies", data=body, timeout=60,
                         headers={"Content-Type": content_type})


def test_an_empty_body_is_400(archive: Stack) -> None:
    r = _post(archive, b"", 'multipart/related; type="application/dicom"; boundary=x')
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "empty" in r.json()["detail"]


@pytest.mark.parametrize("body", [
    b"no delimiter anywhere",
    b"--x\r\nContent-Type: application/dicom\r\n\r\ntruncated, no delimiter after it",
    b"--x junk after the delimiter\r\n",
], ids=["no-delimiter", "truncated", "garbage-after-delimiter"])
def test_broken_framing_is_400_and_stores_nothing(archive: Stack, body: bytes) -> None:
    r = _post(archive, body, 'multipart/related; type="application/dicom"; boundary=x')
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_a_truncated_last_part_fails_alone(archive: Stack, http: requests.Session) -> None:
    good, cut = dx(patient(), 73), dx(patient(), 74)
    body, content_type = multipart([synthetic.to_bytes(good), synthetic.to_bytes(cut)])
    body = body[:-200]  # the second part loses its end and the close delimiter
    r = _post(archive, body, content_type)
    assert r.status_code == 202, r.text
    ds = answer(r)
    assert referenced(ds) == {str(good.SOPInstanceUID)}
    assert failures(ds) == {str(cut.SOPInstanceUID): CANNOT_UNDERSTAND}
    assert orthanc_instance(archive, http, str(cut.SOPInstanceUID)) is None
    assert any("ends inside a part" in w for w in warnings_of(r))


@pytest.mark.parametrize("content_type", [
    "application/dicom",
    "application/json",
    'multipart/related; type="application/dicom+json"; boundary=x',
])
def test_a_content_type_that_is_not_dicom_parts_is_415(archive: Stack, content_type: str) -> None:
    body = b"--x\r\nContent-Type: application/dicom\r\n\r\nX\r\n--x--"
    r = _post(archive, body, content_type)
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_parts_of_another_type_only_are_415(archive: Stack) -> None:
    body, content_type = multipart([b"{}"], part_type="application/dicom+json")
    assert _post(archive, body, content_type).status_code == 415


def test_stow_is_in_the_openapi_document(archive: Stack) -> None:
    paths = archive.http.get(f"{archive.url}/api/openapi.json", timeout=10).json()["paths"]
    assert "post" in paths["/dicom-web/studies"]
    assert "multipart/related" in paths["/dicom-web/studies/{study}"]["post"]["requestBody"][
        "content"]



def test_many_failed_parts_still_get_a_full_answer_through_the_door(archive: Stack) -> None:
    """One Warning header per failed part would overflow nginx's header buffer: they are capped."""
    parts = [b"junk %d " % i + secrets.token_bytes(16) for i in range(80)]
    r = stow(archive, parts)
    assert r.status_code == 409, r.text[:300]
    assert len(answer(r).FailedSOPSequence) == 80
    assert 1 < len(warnings_of(r)) <= 51


def test_api_connections_have_nagle_off_in_multi_process_mode() -> None:
    """uvicorn's own listening socket (multi-process mode) has proto 0, so asyncio leaves Nagle
    on; archive_api.nodelay turns it off on every connection (docs/decisions.md)."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn binds
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    listening.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, http=NoDelayH11Protocol, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listening])))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 204")
            (connection,) = server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            assert accepted.proto == 0  # asyncio would not have set TCP_NODELAY on it
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()
