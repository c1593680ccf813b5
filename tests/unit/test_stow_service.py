"""The STOW-RS service (archive_api.stow) over an in-process Orthanc stand-in (httpx transport).

Orthanc's answers are the ones measured on both platforms: ``{"ID", "Status"}`` when stored,
``{}`` (or, on bookworm, 400) after the gate quarantined the bytes and wrote the spool entry,
an error status when it failed. Real spool entries are written with the spool's own writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset

from archive_api import errors, stow
from archive_api.orthanc import AsyncOrthanc
from archive_api.stow import PartBuffer, StowService
from archive_state import quarantine_spool as spool
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo

Handler = Callable[[bytes], httpx.Response]
CT = 'multipart/related; type="application/dicom"; boundary=b0'


class FakeOrthanc:
    """Records what was posted; answers with ``decide(bytes)``."""

    def __init__(self, decide: Handler) -> None:
        self.decide = decide
        self.posted: list[bytes] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/instances" and request.method == "POST"
        body = request.read()
        assert int(request.headers["content-length"]) == len(body)
        self.posted.append(body)
        return self.decide(body)


def stored(body: bytes) -> httpx.Response:
    return httpx.Response(200, json={"ID": hashlib.sha1(body).hexdigest(), "Status": "Success"})


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def make_client(state: Path, fake: FakeOrthanc, memory_limit: int = 1 << 20) -> TestClient:
    orthanc = AsyncOrthanc("http://orthanc", None, transport=httpx.MockTransport(fake.handler))
    service = StowService(orthanc, "/dicom-web", state, state / "tmp",
                          memory_limit=memory_limit)
    app = FastAPI()
    errors.install(app)
    app.include_router(stow.router(service))
    return TestClient(app, base_url="http://door.example:8042")


def body(*parts: bytes) -> bytes:
    out = b"".join(b"--b0\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                   for p in parts)
    return out + b"--b0--\r\n"


def instance(seed: int, study: StudyInfo | None = None) -> tuple[Dataset, bytes]:
    ds = synthetic.dx_image(16, 16, patient=PatientInfo("张^伟", f"P{seed}"),
                            study=study or StudyInfo(), seed=seed)
    return ds, synthetic.to_bytes(ds)


def post(client: TestClient, content: bytes | Iterator[bytes], path: str = "/dicom-web/studies",
         **headers: str) -> httpx.Response:
    response: httpx.Response = client.post(path, content=content,
                                           headers={"Content-Type": CT, **headers})
    return response


def uids(answer: httpx.Response, sequence: str) -> list[str]:
    items = answer.json().get(sequence, {}).get("Value", [])
    return [i["00081155"].get("Value", [None])[0] for i in items]


def failure_reasons(answer: httpx.Response) -> list[int]:
    return [i["00081197"]["Value"][0] for i in answer.json()["00081198"]["Value"]]


def test_every_part_is_posted_in_order_and_referenced(state: Path) -> None:
    fake = FakeOrthanc(stored)
    study = StudyInfo()
    data = [instance(i, study) for i in range(4)]
    r = post(make_client(state, fake), body(*(d for _, d in data)))
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom+json"
    assert fake.posted == [d for _, d in data]
    assert uids(r, "00081199") == [str(ds.SOPInstanceUID) for ds, _ in data]
    ds = data[0][0]
    assert r.json()["00081190"]["Value"] == [
        f"http://door.example:8042/dicom-web/studies/{ds.StudyInstanceUID}"]
    assert "warning" not in r.headers


def test_forwarded_headers_make_the_urls(state: Path) -> None:
    ds, data = instance(1)
    r = post(make_client(state, FakeOrthanc(stored)), body(data),
             **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pacs.example:8443"})
    assert r.json()["00081190"]["Value"][0].startswith("https://pacs.example:8443/dicom-web/")
    r = post(make_client(state, FakeOrthanc(stored)), body(data),
             Forwarded='proto=https;host="a.example"')
    assert r.json()["00081190"]["Value"][0].startswith("https://a.example/dicom-web/")


def test_quarantined_part_fails_with_its_reasons_the_others_are_kept(state: Path) -> None:
    study = StudyInfo()
    (good, g), (bad, b), (good2, g2) = instance(1, study), instance(2, study), instance(3, study)
    reasons = [{"code": "VALUE_TOO_LONG", "tag": "(0010,0020)", "message": "PatientID 张 300"}]

    def decide(data: bytes) -> httpx.Response:
        if data != b:
            return stored(data)
        spool.write(spool.folder_of(state), data, {"transport": "rest", "reasons": reasons})
        return httpx.Response(200, json={})

    r = post(make_client(state, FakeOrthanc(decide)), body(g, b, g2))
    assert r.status_code == 202
    assert uids(r, "00081199") == [str(good.SOPInstanceUID), str(good2.SOPInstanceUID)]
    assert uids(r, "00081198") == [str(bad.SOPInstanceUID)]
    assert failure_reasons(r) == [0xA900]
    warning = r.headers["warning"]
    assert warning.isascii() and "part 2" in warning and "VALUE_TOO_LONG (0010,0020)" in warning
    assert "%E5%BC%A0" in warning  # 张, percent-encoded


def test_an_error_answer_after_the_gate_quarantined_is_still_quarantined(state: Path) -> None:
    _, data = instance(1)

    def decide(body_bytes: bytes) -> httpx.Response:
        spool.write(spool.folder_of(state), body_bytes,
                    {"reasons": [{"code": "NOT_DICOM", "message": "x"}]})
        return httpx.Response(400, json={"Message": "Bad type for a parameter"})

    r = post(make_client(state, FakeOrthanc(decide)), body(data))
    assert r.status_code == 409 and failure_reasons(r) == [0xC000]
    assert "quarantined as" in r.headers["warning"]


def test_a_repaired_part_is_stored_with_a_warning(state: Path) -> None:
    ds, data = instance(1)
    repaired = state / "gate" / "repaired"
    repaired.mkdir(parents=True)
    (repaired / f"{hashlib.sha256(data).hexdigest()}.json").write_text(json.dumps(
        {"reasons": [{"code": "CHARSET_RELABELLED", "tag": "(0008,0005)", "message": "GB18030"}],
         "repaired_sha256": "0" * 64}))
    r = post(make_client(state, FakeOrthanc(stored)), body(data))
    assert r.status_code == 202
    (item,) = r.json()["00081199"]["Value"]
    assert item["00081196"]["Value"] == [0xB000]
    assert "CHARSET_RELABELLED" in r.headers["warning"]


@pytest.mark.parametrize(("answer", "reason"), [
    (httpx.Response(500, json={"Message": "disk full"}), 0xA700),
    (httpx.Response(507), 0xA700),
    (httpx.Response(403, text="no"), 0x0110),
    (httpx.Response(200, json={"Unexpected": True}), 0x0110),
])
def test_orthanc_failures_fail_the_part(state: Path, answer: httpx.Response, reason: int) -> None:
    _, data = instance(1)
    r = post(make_client(state, FakeOrthanc(lambda _: answer)), body(data))
    assert r.status_code == 409 and failure_reasons(r) == [reason]


def test_orthanc_unreachable_is_out_of_resources(state: Path) -> None:
    def down(_: bytes) -> httpx.Response:
        raise httpx.ConnectError("refused")

    r = post(make_client(state, FakeOrthanc(down)), body(instance(1)[1]))
    assert r.status_code == 409 and failure_reasons(r) == [0xA700]


def test_what_orthanc_cannot_parse_is_kept_in_the_quarantine(state: Path) -> None:
    junk = b"not dicom at all"
    r = post(make_client(state, FakeOrthanc(
        lambda _: httpx.Response(400, json={"OrthancStatus": 15}))), body(junk))
    assert r.status_code == 409 and failure_reasons(r) == [0xC000]
    entry = spool.read_entry(spool.folder_of(state), hashlib.sha256(junk).hexdigest())
    assert entry is not None and entry.meta["transport"] == "stow"
    assert entry.meta["reasons"][0]["code"] == "NOT_DICOM"
    assert entry.meta["remote"] == {"ip": "testclient"}


def test_study_in_the_url_is_enforced_per_part(state: Path) -> None:
    fake = FakeOrthanc(stored)
    (mine, m), (other, o) = instance(1), instance(2)
    r = post(make_client(state, fake), body(m, o),
             path=f"/dicom-web/studies/{mine.StudyInstanceUID}")
    assert r.status_code == 202 and failure_reasons(r) == [0xA900]
    assert fake.posted == [m]
    assert post(make_client(state, fake), body(m), path="/dicom-web/studies/x.y").status_code \
        == 400


def test_a_large_part_goes_through_a_private_temp_file_that_disappears(state: Path) -> None:
    ds, data = instance(1)
    big = data + b"\x00" * (3 << 20)  # trailing padding: still the same instance header

    seen: list[int] = []

    def decide(received: bytes) -> httpx.Response:
        seen.extend(len(os.listdir(state / "tmp")) for _ in [0])
        return stored(received)

    fake = FakeOrthanc(decide)

    def chunks() -> Iterator[bytes]:
        whole = body(big)
        for start in range(0, len(whole), 65536):
            yield whole[start:start + 65536]

    r = post(make_client(state, fake, memory_limit=1 << 20), chunks())
    assert r.status_code == 200 and fake.posted == [big]
    assert seen == [0]  # unlinked as soon as it was made: no name in the folder, ever
    assert stat.S_IMODE((state / "tmp").stat().st_mode) == 0o700


def test_part_buffer_spills_to_a_0600_file(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = PartBuffer(tmp_path, memory_limit=10)
    modes: list[int] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        modes.append(mode)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    buffer.write(b"0123456789")
    assert not buffer.in_file
    buffer.write(b"abc")
    assert buffer.in_file and modes == [0o600] and os.listdir(tmp_path) == []
    assert buffer.read_all() == b"0123456789abc" and buffer.size == 13
    assert buffer.sha256 == hashlib.sha256(b"0123456789abc").hexdigest()
    buffer.discard()
    assert not buffer.in_file


@pytest.mark.parametrize(("content", "status"), [
    (b"", 400),
    (b"garbage without delimiter", 400),
    (b"--b0\r\nContent-Type: application/dicom\r\n\r\nno end", 400),
])
def test_bad_bodies(state: Path, content: bytes, status: int) -> None:
    fake = FakeOrthanc(stored)
    r = post(make_client(state, fake), content)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    assert fake.posted == []


def test_wrong_types_and_accept(state: Path) -> None:
    client = make_client(state, FakeOrthanc(stored))
    data = body(instance(1)[1])
    assert client.post("/dicom-web/studies", content=data,
                       headers={"Content-Type": "application/dicom"}).status_code == 415
    assert post(client, data, Accept="image/png").status_code == 406
    xml = post(client, data, Accept="application/dicom+xml")
    assert xml.status_code == 200 and xml.text.startswith("<?xml")


def test_warning_headers_are_capped_but_every_part_is_answered(state: Path) -> None:
    refused = FakeOrthanc(lambda _: httpx.Response(403, text="no"))
    r = post(make_client(state, refused), body(*(b"x%d" % i for i in range(stow.MAX_WARNINGS + 7))))
    assert r.status_code == 409 and len(failure_reasons(r)) == stow.MAX_WARNINGS + 7
    headers = r.headers.get_list("warning")
    assert len(headers) == stow.MAX_WARNINGS + 1
    assert headers[0].startswith('299 archive "part 1: failed 0x0110')
    assert "7 more parts failed" in headers[-1]


def test_stored_parts_are_not_hashed_failed_ones_are(state: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[int] = []
    real = hashlib.sha256

    def counting(*args: bytes) -> "hashlib._Hash":
        hashed.append(1)
        return real(*args)

    study = StudyInfo()
    (_, g), (_, b) = instance(1, study), instance(2, study)

    def decide(data: bytes) -> httpx.Response:
        if data != b:
            return stored(data)
        spool.write(spool.folder_of(state), data, {"reasons": [{"code": "X", "message": "x"}]})
        return httpx.Response(200, json={})

    client = make_client(state, FakeOrthanc(decide))
    monkeypatch.setattr(hashlib, "sha256", counting)
    assert post(client, body(g, g)).status_code == 200
    assert hashed == []
    r = post(client, body(g, b))
    assert r.status_code == 202 and failure_reasons(r) == [0xA900]
    assert hashed  # the quarantined part was looked up by its SHA-256


def test_a_repair_recorded_during_the_store_is_found_in_an_old_folder(state: Path) -> None:
    _, data = instance(1)
    repaired = state / "gate" / "repaired"
    repaired.mkdir(parents=True)
    (repaired / "old.json").write_text("{}")
    os.utime(repaired, (1_000_000_000, 1_000_000_000))  # last changed in 2001

    def decide(received: bytes) -> httpx.Response:  # what the gate does: temp file, rename
        temp = repaired / ".record.tmp"
        temp.write_text(json.dumps({"reasons": [{"code": "CHARSET_RELABELLED", "tag": None,
                                                 "message": "GB18030"}]}))
        os.replace(temp, repaired / f"{hashlib.sha256(received).hexdigest()}.json")
        return stored(received)

    r = post(make_client(state, FakeOrthanc(decide)), body(data))
    assert r.status_code == 202 and "CHARSET_RELABELLED" in r.headers["warning"]
    (item,) = r.json()["00081199"]["Value"]
    assert item["00081196"]["Value"] == [0xB000]


def test_parts_beyond_the_memory_budget_go_to_a_temp_file(tmp_path: Path) -> None:
    budget = stow.MemoryBudget(16)
    first, second = PartBuffer(tmp_path, 100, budget), PartBuffer(tmp_path, 100, budget)
    first.write(b"0123456789")
    second.write(b"abcdefghij")  # 20 bytes would pass the budget of 16
    assert not first.in_file and second.in_file and budget.used == 10
    assert second.read_all() == b"abcdefghij"
    assert second.sha256 == hashlib.sha256(b"abcdefghij").hexdigest()
    first.discard()
    second.discard()
    assert budget.used == 0
