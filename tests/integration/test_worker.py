"""The worker against a real Orthanc: a stored study becomes stable, is verified; a worker
killed mid-job (SIGKILL) leaves its job to be re-claimed after the lease and done once; SIGTERM
hands the job back and exits 0; a corrupted file fails the fixity check for good.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from testkit import dcmtk

from ._services import Archive, wait_for

pytestmark = pytest.mark.integration

SLOW = ["--kinds-module", "tests.integration.slow_kinds"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    archive = Archive(tmp_path_factory.mktemp("worker")).start()
    try:
        archive.start_api(SLOW)
        yield archive
    finally:
        archive.stop()


def job(archive: Archive, job_id: int) -> dict[str, Any]:
    response = archive.http.get(f"{archive.api_url}/api/jobs/{job_id}", timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_state(archive: Archive, job_id: int, *states: str, timeout: float = 60) -> dict[str, Any]:
    return dict(wait_for(f"job {job_id} in {states}",
                         lambda: (j := job(archive, job_id))["state"] in states and j,
                         timeout=timeout, interval=0.1))


def enqueue(archive: Archive, kind: str, params: dict[str, Any]) -> int:
    response = archive.http.post(f"{archive.api_url}/api/jobs", json={"kind": kind,
                                                                  "params": params}, timeout=5)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def store_study(archive: Archive, folder: Path, name: str, seed: int) -> str:
    assert archive.orthanc is not None
    patient = PatientInfo(name, f"WRK-{seed}", "19700101", "F")
    datasets = synthetic.ct_volume(3, 32, 32, patient=patient, study=StudyInfo(), seed=seed)
    synthetic.write_files(datasets, folder)
    dcmtk.run("storescu", "-aec", archive.orthanc.aet, "+sd", "127.0.0.1",
              archive.orthanc.dicom_port, folder)
    found = requests.post(f"{archive.orthanc_url}/tools/lookup", data=datasets[0].StudyInstanceUID,
                          auth=archive.auth, timeout=10).json()
    return str(found[0]["ID"])


def test_a_stable_study_is_verified_by_the_worker(archive: Archive, tmp_path: Path) -> None:
    worker = archive.start_worker("worker-1")
    try:
        study = store_study(archive, tmp_path / "in", "王^芳", seed=1)

        def verify_job() -> dict[str, Any] | None:
            listed = archive.http.get(f"{archive.api_url}/api/jobs", timeout=5,
                                  params={"kind": "archive.verify"}).json()
            mine = [j for j in listed["items"] if j["params"] == {"study": study}]
            return mine[0] if mine and mine[0]["state"] == "succeeded" else None

        done = wait_for("the stable study's verify job", verify_job, timeout=60)
        assert done["result"] == {"checked": 3, "failed": []}
        assert done["attempts"] == 1 and done["progress"]["done"] == 3
        health = archive.http.get(f"{archive.api_url}/api/health", timeout=5).json()
        status = {s["name"]: s for s in health["services"]}["worker-1"]
        assert status["status"] == "ok" and status["pid"] == worker.pid
    finally:
        assert worker.terminate() == 0


def test_a_corrupted_file_fails_verification_without_retry(archive: Archive,
                                                           tmp_path: Path) -> None:
    study = store_study(archive, tmp_path / "in", "李^雷", seed=2)
    instances = requests.get(f"{archive.orthanc_url}/studies/{study}/instances",
                             auth=archive.auth, timeout=10).json()
    victim = sorted(i["ID"] for i in instances)[1]
    info = requests.get(f"{archive.orthanc_url}/instances/{victim}/attachments/dicom/info",
                        auth=archive.auth, timeout=10).json()
    assert archive.orthanc is not None
    uuid = info["Uuid"]
    stored = archive.orthanc.data_dir / "storage" / uuid[:2] / uuid[2:4] / uuid
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0xFF
    stored.write_bytes(bytes(data))
    job_id = enqueue(archive, "archive.verify", {"study": study})
    worker = archive.start_worker("worker-1")
    try:
        failed = wait_state(archive, job_id, "failed")
    finally:
        worker.terminate()
    assert failed["attempts"] == 1
    assert victim in failed["lastError"] and "1 of 3" in failed["lastError"]


def test_a_worker_killed_mid_job_leaves_it_to_another_after_the_lease(archive: Archive,
                                                                      tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    lease = archive.config.archive.jobs.lease_seconds
    job_id = enqueue(archive, "test.slow", {"steps": 15, "delay": 0.2, "ledger": str(ledger)})
    first = archive.start_worker("worker-a", SLOW)
    running = wait_for("progress on worker-a",
                       lambda: (j := job(archive, job_id))["progress"]["done"] and j)
    assert running["leaseOwner"] == f"worker-a@{socket.gethostname()}:{first.pid}"
    assert running["state"] == "running"
    first.kill()
    killed_at = time.monotonic()
    second = archive.start_worker("worker-b", SLOW)
    try:
        taken = wait_for("worker-b to take the job",
                         lambda: (str((j := job(archive, job_id))["leaseOwner"] or "")).startswith("worker-b@")
                         and j)
        assert time.monotonic() - killed_at >= lease * 0.8  # not before the lease ran out
        assert taken["attempts"] == 2
        done = wait_state(archive, job_id, "succeeded")
    finally:
        second.terminate()
    assert done["result"]["pid"] == second.pid and done["attempts"] == 2
    lines = ledger.read_text().splitlines()
    assert lines == [f"{job_id} {second.pid} attempt 2"]  # completed exactly once


def test_sigterm_hands_the_job_back_and_exits_zero(archive: Archive, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    job_id = enqueue(archive, "test.slow", {"steps": 50, "delay": 0.1, "ledger": str(ledger)})
    worker = archive.start_worker("worker-t", SLOW)
    wait_for("progress", lambda: job(archive, job_id)["progress"]["done"])
    started = time.monotonic()
    assert worker.terminate() == 0
    assert time.monotonic() - started < 5
    back = job(archive, job_id)
    assert back["state"] == "queued" and back["leaseOwner"] is None
    assert "SIGTERM" in back["lastError"] and not ledger.exists()
    archive.http.post(f"{archive.api_url}/api/jobs/{job_id}/cancel", timeout=5)
    assert job(archive, job_id)["state"] == "cancelled"
