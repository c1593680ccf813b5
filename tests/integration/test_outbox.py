"""The change outbox against a real Orthanc with our plugin: instances stored over DIMSE
(DCMTK's storescu) become rows of the tenant's state database, in order, named as Orthanc's
REST API names them; a delete too. Without the migrations Orthanc refuses to start.

The state database is SQLite (the default, in ``Archive.StateDirectory``) or a private
PostgreSQL cluster (``Archive.Database.State``), migrated first as the launcher does before
Orthanc starts (``archive_state.db.migrate``); the plugin itself never migrates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from sqlalchemy import select

from archive_state.db import make_engine, migrate
from archive_state.models import OutboxRow
from testkit import dcmtk
from testkit.archive_process import ArchiveProcess, StartupFailed
from testkit.postgres import PostgresCluster

pytestmark = pytest.mark.integration

Row = tuple[str, str, str]


def new_archive(workdir: Path, state_url: str = "") -> ArchiveProcess:
    # StableAge 1: the stable-series/study events come within seconds. The plugin has no route:
    # readiness is Orthanc's own /system.
    overrides: dict[str, dict[str, Any]] = {"orthanc.json": {"StableAge": 1}}
    if state_url:
        overrides["archive.json"] = {"Archive": {"Database": {"State": state_url}}}
    return ArchiveProcess(workdir, overrides=overrides, ready_path="/system",
                          ready_statuses=(200,))


def default_state_url(proc: ArchiveProcess) -> str:
    """Where the shipped config puts tenant ``default``'s SQLite state database."""
    return f"sqlite:///{proc.data_dir}/state/tenant-default.sqlite"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ArchiveProcess, str]]:
    """A running archive and the URL of its migrated state database."""
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.url(f"state_{tmp_path.name.lower()[:40]}")
        proc = new_archive(tmp_path, url)
    else:
        proc = new_archive(tmp_path)
        (proc.data_dir / "state").mkdir(parents=True)
        url = default_state_url(proc)
    migrate(url, "state")
    proc.start()
    try:
        yield proc, url
    finally:
        proc.stop()


def secondary_capture(folder: Path, study: str, series: str, number: int) -> Path:
    """A small valid DICOM file (Secondary Capture, 8x8 MONOCHROME2) of one study/series."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "OUTBOX^TEST", "OUTBOX-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality, ds.ConversionType, ds.InstanceNumber = "OT", "WSD", number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(64))
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def outbox(url: str) -> list[Row]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxRow.change_type, OutboxRow.resource_type,
                                       OutboxRow.resource_id).order_by(OutboxRow.seq)).all()
    finally:
        engine.dispose()
    return [(r.change_type, r.resource_type, r.resource_id) for r in rows]


def wait_for(url: str, wanted: set[Row], timeout: float = 60.0) -> list[Row]:
    """Poll the outbox until it holds every row of ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = outbox(url)
        if wanted <= set(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_stored_instances_and_a_delete_become_outbox_rows(
        archive: tuple[ArchiveProcess, str], tmp_path: Path) -> None:
    proc, url = archive
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    files = tmp_path / "files"
    files.mkdir()
    paths = [secondary_capture(files, study, series_a, 1),
             secondary_capture(files, study, series_a, 2),
             secondary_capture(files, study, series_b, 1)]
    dcmtk.run("storescu", "-aec", proc.aet, "127.0.0.1", proc.dicom_port, *paths)

    with requests.Session() as http:
        instances = set(http.get(f"{proc.url}/instances", timeout=10).json())
        (study_id,) = http.get(f"{proc.url}/studies", timeout=10).json()
        series_ids = set(http.get(f"{proc.url}/series", timeout=10).json())
        (patient_id,) = http.get(f"{proc.url}/patients", timeout=10).json()
    assert len(instances) == 3 and len(series_ids) == 2

    wanted = ({("NewSeries", "Series", s) for s in series_ids}
              | {("StableSeries", "Series", s) for s in series_ids}
              | {("NewStudy", "Study", study_id), ("StableStudy", "Study", study_id),
                 ("NewPatient", "Patient", patient_id)})
    rows = wait_for(url, wanted)
    assert wanted <= set(rows), (rows, proc.log_text()[-3000:])
    # In order: a series' row precedes its study becoming stable.
    stable = rows.index(("StableStudy", "Study", study_id))
    assert all(rows.index(("NewSeries", "Series", s)) < stable for s in series_ids)
    # Per-image and server events stay out (one row per image would slow ingest).
    assert not [r for r in rows if r[0] in ("NewInstance", "NewChildInstance", "OrthancStarted")]

    gone = sorted(instances)[0]
    with requests.Session() as http:
        http.delete(f"{proc.url}/instances/{gone}", timeout=10).raise_for_status()
    rows = wait_for(url, {("Deleted", "Instance", gone)})
    assert ("Deleted", "Instance", gone) in rows

    log = proc.log_text()
    assert ("features=change-outbox,ingest-gate callbacks=RegisterOnChangeCallback,"
            "RegisterReceivedInstanceCallback checks=outbox-table=ok,quarantine-writable=ok") in log
    proc.stop()
    assert proc.process is not None and proc.process.returncode == 0, log[-3000:]


def test_orthanc_refuses_to_start_without_the_state_migrations(tmp_path: Path) -> None:
    proc = new_archive(tmp_path)
    with pytest.raises(StartupFailed) as info:
        proc.start(timeout=60)
    assert info.value.returncode not in (None, 0)
    expected = "no 'outbox' table: its migrations have not run"
    assert expected in info.value.log, info.value.log[-3000:]
