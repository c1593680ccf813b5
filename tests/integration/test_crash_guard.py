"""The crash guard end to end: an instance that kills Orthanc twice is quarantined, and the
archive stops crash-looping.

The whole archive runs (Stack) with the ingest gate off, so that a poison instance (Rows with VR
SS, which makes GDCM abort Orthanc 1.10.1 when it decodes it) gets stored over Orthanc's internal
REST. A viewer's request for its rendered frame through the door then kills Orthanc; supervisord
restarts it; the second request kills it again. The worker reads the door's error log, sees the
instance in flight at two deaths, and its quarantine job moves the stored bytes to the spool and
deletes the instance. A healthy instance stored beside it is untouched.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from archive_state import quarantine_spool
from archive_worker import crash_quarantine
from testkit import platform as platforms
from testkit.stack import Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(platforms.is_trixie(),
                       reason="trixie's Orthanc 1.12 does not crash on these poison instances "
                              "(issue 7): there is no death to guard against"),
]

OVERRIDES = {"archive.json": {"Archive": {
    "Gate": {"Enabled": False},
    "Jobs": {"PollSeconds": 0.5},
    "CrashGuard": {"PollSeconds": 0.5},
}}}


def instance(*, rows_vr: str, patient_id: str, patient_name: str) -> bytes:
    """A 16×16 secondary capture in explicit VR little endian with Rows of the VR given."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.Modality = "OT"
    ds.add_new(0x00280010, rows_vr, 16)
    ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(256)) * 2
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass(frozen=True)
class Stored:
    data: bytes
    orthanc_id: str
    study: str
    series: str
    sop: str

    @property
    def rendered(self) -> str:
        return (f"/dicom-web/studies/{self.study}/series/{self.series}/instances/{self.sop}"
                "/frames/1/rendered")


def store(stack: Stack, data: bytes) -> Stored:
    r = requests.post(stack.orthanc_url + "/instances", data=data, auth=stack.orthanc_auth,
                      headers={"Content-Type": "application/dicom"}, timeout=60)
    r.raise_for_status()
    orthanc_id = r.json()["ID"]
    tags = requests.get(f"{stack.orthanc_url}/instances/{orthanc_id}/simplified-tags",
                        auth=stack.orthanc_auth, timeout=30).json()
    return Stored(data, orthanc_id, tags["StudyInstanceUID"], tags["SeriesInstanceUID"],
                  tags["SOPInstanceUID"])


def poll(what: str, probe: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, requests.RequestException) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def orthanc_answers(stack: Stack) -> bool:
    return requests.get(stack.orthanc_url + "/system", auth=stack.orthanc_auth,
                        timeout=5).status_code == 200


def wait_restarted(stack: Stack, old_pid: int) -> int:
    """Until supervisord runs a new Orthanc (past its start seconds, so the next death is
    restarted at once) and it answers."""
    def running() -> int | None:
        info = stack.programs()["orthanc"]
        ok = info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid)
        return int(info["pid"]) if ok and orthanc_answers(stack) else None

    return int(poll("Orthanc restarted by supervisord", running))


def orthanc_has(stack: Stack, orthanc_id: str) -> bool:
    r = requests.get(f"{stack.orthanc_url}/instances/{orthanc_id}", auth=stack.orthanc_auth,
                     timeout=10)
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def spooled(stack: Stack, sop: str) -> list[quarantine_spool.SpoolEntry]:
    folder = quarantine_spool.folder_of(stack.state_dir)
    entries = (quarantine_spool.read_entry(folder, entry)
               for entry in quarantine_spool.list_entries(folder))
    return [e for e in entries if e is not None and e.meta["sop_instance_uid"] == sop]


def jobs_of_kind(stack: Stack) -> list[dict[str, Any]]:
    r = stack.http.get(stack.url + "/api/jobs", params={"kind": crash_quarantine.KIND}, timeout=10)
    r.raise_for_status()
    return list(r.json()["items"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("crash-guard"), overrides=OVERRIDES) as running:
        yield running


@pytest.fixture(scope="module")
def crashed(stack: Stack) -> tuple[Stored, Stored]:
    """The poison instance after two deadly requests, and the healthy one beside it."""
    poison = store(stack, instance(rows_vr="SS", patient_id="CG-POISON", patient_name="王^五"))
    healthy = store(stack, instance(rows_vr="US", patient_id="CG-HEALTHY", patient_name="张^三"))
    assert stack.http.get(stack.url + healthy.rendered, timeout=60).status_code == 200
    for _ in range(2):
        pid = stack.program_pid("orthanc")
        answer = stack.http.get(stack.url + poison.rendered, timeout=60)
        assert answer.status_code == 502  # Orthanc died under the request; the door answers
        wait_restarted(stack, pid)
    return poison, healthy


def test_the_instance_that_killed_orthanc_twice_is_taken_out(
        stack: Stack, crashed: tuple[Stored, Stored]) -> None:
    poison, _ = crashed
    poll("the poison instance gone from Orthanc", lambda: not orthanc_has(stack, poison.orthanc_id))
    job = poll("the quarantine job succeeded",
               lambda: [j for j in jobs_of_kind(stack) if j["state"] == "succeeded"])[0]
    assert job["params"]["sop_instance_uid"] == poison.sop
    assert len(job["params"]["deaths"]) == 2
    assert job["result"]["instances"] == [poison.orthanc_id]
    assert job["result"]["patient_id"] == "CG-POISON"
    worker_log = stack.log_text("worker-1")
    assert f"instance {poison.sop} (Orthanc {poison.orthanc_id}, patient CG-POISON)" in worker_log


def test_its_bytes_are_in_the_quarantine_with_the_reason(stack: Stack,
                                                         crashed: tuple[Stored, Stored]) -> None:
    poison, _ = crashed
    entries = poll("the spool entry", lambda: spooled(stack, poison.sop))
    assert len(entries) == 1
    meta = entries[0].meta
    assert meta["transport"] == "reingest"
    assert [r["code"] for r in meta["reasons"]] == ["decoder-crash"]
    assert meta["reasons"][0]["tag"] is None
    message = meta["reasons"][0]["message"]
    assert f"Orthanc stopped twice while serving GET {poison.rendered} HTTP/1.1" in message
    assert (meta["patient_id"], meta["patient_name"]) == ("CG-POISON", "王^五")
    assert meta["study_instance_uid"] == poison.study
    assert meta["series_instance_uid"] == poison.series
    folder = quarantine_spool.folder_of(stack.state_dir)
    assert quarantine_spool.data_path(folder, entries[0].id).read_bytes() == poison.data
    listed = stack.http.get(stack.url + "/api/quarantine", params={"reason": "decoder-crash"},
                          timeout=30)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [entries[0].id]


def test_a_third_request_is_404_and_orthanc_stays_up(stack: Stack,
                                                     crashed: tuple[Stored, Stored]) -> None:
    poison, _ = crashed
    poll("the poison instance gone from Orthanc", lambda: not orthanc_has(stack, poison.orthanc_id))
    pid = stack.program_pid("orthanc")
    assert stack.http.get(stack.url + poison.rendered, timeout=60).status_code == 404
    assert orthanc_answers(stack)
    assert stack.program_pid("orthanc") == pid


def test_the_healthy_instance_beside_it_is_untouched(stack: Stack,
                                                     crashed: tuple[Stored, Stored]) -> None:
    poison, healthy = crashed
    poll("the poison instance gone from Orthanc", lambda: not orthanc_has(stack, poison.orthanc_id))
    assert orthanc_has(stack, healthy.orthanc_id)
    r = requests.get(f"{stack.orthanc_url}/instances/{healthy.orthanc_id}/file",
                     auth=stack.orthanc_auth, timeout=30)
    assert r.content == healthy.data
    assert stack.http.get(stack.url + healthy.rendered, timeout=60).status_code == 200
    assert spooled(stack, healthy.sop) == []


def test_the_job_run_again_spools_nothing_twice(stack: Stack,
                                                crashed: tuple[Stored, Stored]) -> None:
    """As after a kill between the spool write and the delete: the instance is in Orthanc and
    its bytes in the spool. Running the job again deletes it and keeps one entry."""
    poison, _ = crashed
    poll("the first quarantine", lambda: spooled(stack, poison.sop))
    again = store(stack, poison.data)
    assert again.orthanc_id == poison.orthanc_id and orthanc_has(stack, again.orthanc_id)
    first = jobs_of_kind(stack)[-1]
    r = stack.http.post(stack.url + "/api/jobs", json={
        "kind": crash_quarantine.KIND, "params": first["params"],
        "idempotencyKey": f"test-rerun-{poison.sop}"}, timeout=10)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]

    def finished() -> dict[str, Any] | None:
        job = stack.http.get(f"{stack.url}/api/jobs/{job_id}", timeout=10).json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    job = poll("the re-run job", finished)
    assert job["state"] == "succeeded", job
    assert not orthanc_has(stack, poison.orthanc_id)
    entries = spooled(stack, poison.sop)
    assert [e.id for e in entries] == job["result"]["quarantine"]
