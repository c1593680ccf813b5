"""Two minutes of a busy day: no deadlock, no error, nothing lost.

Eight DCMTK ``storescu`` associations keep storing new studies, four readers keep searching
(QIDO-RS through the door and through the API's decoding route) and reading (WADO-RS metadata and
frames), and the worker keeps verifying every study that becomes stable plus whole-archive
fixity checks asked for through the API. This is the mix that deadlocked Orthanc when a Python
thread called the SDK during an ingest callback (docs/architecture.md, decision 3): here nothing
of ours runs inside Orthanc but the change outbox.

Every loop is bounded by the deadline and by a count; the test stops by itself.
"""

from __future__ import annotations

import copy
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom.uid import generate_uid

from archive_tools import synthetic
from testkit import dcmtk
from testkit.stack import Stack

#: Two minutes, as the platform issue asks; ``ARCHIVE_LOAD_SECONDS`` shortens it where the same
#: mix has already run for two minutes (scripts/test's second platform).
DURATION = float(os.environ.get("ARCHIVE_LOAD_SECONDS", "120"))
ASSOCIATIONS = 8
READERS = 4
STUDIES_PER_ASSOCIATION = 400   # a bound, never reached in DURATION on this machine
SLICES = 10
CALLING_AET = "LOADTEST"


@dataclass
class Tally:
    """What the threads did, counted under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stored: Counter[str] = field(default_factory=Counter)      # study uid → instances acknowledged
    reads: Counter[str] = field(default_factory=Counter)       # kind of read → count
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides: dict[str, Any] = {
        "orthanc.json": {"StableAge": 2},
        "archive.json": {"Archive": {"Jobs": {"PollSeconds": 0.5}}},
    }
    with Stack(tmp_path_factory.mktemp("load"), overrides=overrides) as stack:
        stack.wait_healthy()
        yield stack


def _series_template() -> list[Any]:
    patient = synthetic.PatientInfo("张^伟", "LOAD-TEMPLATE")
    return synthetic.mr_series(SLICES, 64, 64, patient=patient, seed=7)


def _write_study(template: list[Any], folder: Path, number: int, patient_id: str) -> str:
    """A copy of the template as a new study (new UIDs), written to ``folder``; its study UID."""
    study_uid, series_uid = generate_uid(), generate_uid()
    folder.mkdir(parents=True)
    for i, original in enumerate(template):
        ds = copy.deepcopy(original)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.AccessionNumber = patient_id, f"L{number:06d}"
        synthetic.write_file(ds, folder / f"{i:03d}.dcm")
    return study_uid


def _sender(stack: Stack, template: list[Any], root: Path, index: int, deadline: float,
            tally: Tally) -> None:
    for n in range(STUDIES_PER_ASSOCIATION):
        if time.monotonic() > deadline:
            return
        folder = root / f"a{index}" / f"s{n}"
        uid = _write_study(template, folder, index * 10000 + n, f"LOAD-{index}")
        result = dcmtk.run("storescu", "-aet", CALLING_AET, "-aec", stack.aet, "+sd",
                           "127.0.0.1", stack.dicom_port, folder, timeout=120, check=False)
        if result.returncode != 0:
            tally.error(f"storescu {index}/{n} exited {result.returncode}: {result.output[-500:]}")
            return
        with tally.lock:
            tally.stored[uid] += SLICES


def _reader(stack: Stack, index: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(index)
    with requests.Session() as session:
        for _ in range(100_000):
            if time.monotonic() > deadline:
                return
            with tally.lock:
                known = list(tally.stored)
            kind, url, accept = _pick_read(stack, rng, known)
            try:
                r = session.get(url, headers={"Accept": accept}, timeout=60)
            except requests.RequestException as exc:
                tally.error(f"reader {index}: {kind} {url}: {exc}")
                continue
            if r.status_code != 200:
                tally.error(f"reader {index}: {kind} {url} answered {r.status_code}: {r.text[:300]}")
                continue
            with tally.lock:
                tally.reads[kind] += 1


def _pick_read(stack: Stack, rng: random.Random, known: list[str]) -> tuple[str, str, str]:
    json = "application/dicom+json"
    choice = rng.randrange(4) if known else rng.randrange(2)
    if choice == 0:
        return "qido", f"{stack.url}/dicom-web/studies?PatientID=LOAD-*&limit=50", json
    if choice == 1:
        return ("qido-decoded", f"{stack.url}/api/dicom-web/studies?PatientName=%E5%BC%A0*&limit=20",
                json)
    study = rng.choice(known)
    if choice == 2:
        return "metadata", f"{stack.url}/dicom-web/studies/{study}/metadata", json
    return "series", f"{stack.url}/dicom-web/studies/{study}/series", json


def _fixity_requests(stack: Stack, deadline: float, tally: Tally) -> None:
    """Every 15 s, ask the worker to verify the whole archive, as an administrator would."""
    for n in range(20):
        if time.monotonic() > deadline:
            return
        r = stack.http.post(f"{stack.url}/api/jobs", timeout=30,
                          json={"kind": "archive.verify", "params": {},
                                "idempotencyKey": f"load-fixity-{n}"})
        if r.status_code != 201:
            tally.error(f"POST /api/jobs answered {r.status_code}: {r.text[:300]}")
        time.sleep(15)


def _all_jobs(stack: Stack) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for offset in range(0, 100_000, 200):
        page = stack.http.get(f"{stack.url}/api/jobs?limit=200&offset={offset}", timeout=30).json()
        jobs.extend(page["items"])
        if offset + 200 >= page["total"]:
            return jobs
    return jobs


def test_two_busy_minutes_lose_nothing_and_stop_nothing(busy: Stack, tmp_path: Path) -> None:
    pids = {name: info["pid"] for name, info in busy.programs().items()}
    template = _series_template()
    tally = Tally()
    deadline = time.monotonic() + DURATION
    threads = [threading.Thread(target=_sender, args=(busy, template, tmp_path, i, deadline, tally))
               for i in range(ASSOCIATIONS)]
    threads += [threading.Thread(target=_reader, args=(busy, i, deadline, tally))
                for i in range(READERS)]
    threads.append(threading.Thread(target=_fixity_requests, args=(busy, deadline, tally)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION + 180)
    assert not any(t.is_alive() for t in threads), "a load thread did not finish: deadlock?"

    assert not tally.errors, "\n".join(tally.errors[:20])
    assert len(tally.stored) >= ASSOCIATIONS, tally.stored
    assert min(tally.reads.values(), default=0) > 0 and len(tally.reads) == 4, tally.reads
    # Nothing acknowledged is lost: every instance storescu saw acknowledged is in the archive.
    statistics = requests.get(f"{busy.orthanc_url}/statistics", auth=busy.orthanc_auth,
                              timeout=30).json()
    assert int(statistics["CountInstances"]) == sum(tally.stored.values())
    # No process died or was restarted on the way.
    assert {name: info["pid"] for name, info in busy.programs().items()} == pids
    # The worker catches up: every study verified, every fixity check done, none failed.
    limit = time.monotonic() + 240
    while time.monotonic() < limit:
        jobs = _all_jobs(busy)
        states = Counter(job["state"] for job in jobs)
        if set(states) == {"succeeded"} and len(jobs) >= len(tally.stored):
            break
        assert not states["failed"], [j for j in jobs if j["state"] == "failed"][:3]
        time.sleep(2)
    else:
        raise AssertionError(f"jobs not done in time: {states}")
    verified = {job["params"].get("study") for job in jobs if job["params"].get("study")}
    assert len(verified) == len(tally.stored)
    assert busy.wait_healthy()["status"] == "ok"
