"""The plugin's features through the runtime: the change outbox on a real SQLite state database.

``bootstrap.start`` runs as Orthanc would run it, with the shared fake SDK standing in for the
``orthanc`` module; the database is a real SQLite file brought to the schema by
``archive_state.db.migrate``, as the launcher does before Orthanc starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from archive_config import ConfigError
from archive_state.db import make_engine, migrate
from archive_state.models import OutboxRow
from archive_state.outbox import Outbox
from regional_archive import bootstrap
from regional_archive.errors import StartupCheckFailed
from regional_archive.events import ChangeEvent, ChangeType
from regional_archive.features.change_outbox import OUTBOX_CHANGES, AppendChange
from testkit.fake_orthanc import ChangeType as SdkChange
from testkit.fake_orthanc import FakeOrthanc, PluginVersion, fake_orthanc
from testkit.fake_orthanc import ResourceType as SdkResource

log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def restore_plugin_logging() -> Iterator[None]:
    """bootstrap.start points the package's logger at the fake SDK; undo it for other tests."""
    logger = logging.getLogger("regional_archive")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def configuration(state: Path, **archive: Any) -> dict[str, Any]:
    section = {"StateDirectory": str(state), "Tenant": "clinic-7", "Viewer": {"Enabled": False}}
    return {"Archive": {**section, **archive}}


def migrated_sdk(tmp_path: Path, version: PluginVersion = "4.0") -> FakeOrthanc:
    state = tmp_path / "state"
    state.mkdir()
    migrate(f"sqlite:///{state}/tenant-clinic-7.sqlite", "state")
    return fake_orthanc(version, configuration(state),
                        [str(tmp_path / "config.json")])


def outbox_rows(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    engine = make_engine(f"sqlite:///{tmp_path}/state/tenant-clinic-7.sqlite")
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.tenant, OutboxRow.change_type,
                                   OutboxRow.resource_type, OutboxRow.resource_id)
                            .order_by(OutboxRow.seq)).all()
    engine.dispose()
    return [(r.tenant, r.change_type, r.resource_type, r.resource_id) for r in rows]


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_change_events_of_interest_land_in_the_tenants_outbox(
        tmp_path: Path, version: PluginVersion) -> None:
    sdk = migrated_sdk(tmp_path, version)
    plugin = bootstrap.start(sdk)
    assert sdk.registrations == ["RegisterOnChangeCallback", "RegisterReceivedInstanceCallback",
                                 "RegisterIncomingCStoreInstanceFilter"]

    sdk.fire_change(SdkChange.ORTHANC_STARTED, SdkResource.NONE, "")
    sdk.fire_change(SdkChange.NEW_INSTANCE, SdkResource.INSTANCE, "i-1")
    sdk.fire_change(SdkChange.NEW_CHILD_INSTANCE, SdkResource.STUDY, "s-1")
    sdk.fire_change(SdkChange.STABLE_SERIES, SdkResource.SERIES, "se-1")
    sdk.fire_change(SdkChange.STABLE_STUDY, SdkResource.STUDY, "s-1")
    sdk.fire_change(SdkChange.UPDATED_ATTACHMENT, SdkResource.INSTANCE, "i-1")
    sdk.fire_change(SdkChange.UPDATED_METADATA, SdkResource.STUDY, "s-1")
    sdk.fire_change(SdkChange.DELETED, SdkResource.INSTANCE, "i-1")
    sdk.fire_change(SdkChange.UPDATED_MODALITIES, SdkResource.NONE, "")

    assert outbox_rows(tmp_path) == [
        ("clinic-7", "StableSeries", "Series", "se-1"),
        ("clinic-7", "StableStudy", "Study", "s-1"),
        ("clinic-7", "UpdatedAttachment", "Instance", "i-1"),
        ("clinic-7", "UpdatedMetadata", "Study", "s-1"),
        ("clinic-7", "Deleted", "Instance", "i-1"),
    ]
    assert plugin.report.features == ("change-outbox", "ingest-gate")
    assert [(c.name, c.ok) for c in plugin.report.checks] == [("outbox-table", True),
                                                              ("quarantine-writable", True)]
    (line,) = [m for level, m in sdk.logs if "started" in m]
    assert ("tenant=clinic-7 features=change-outbox,ingest-gate "
            "callbacks=RegisterOnChangeCallback,RegisterReceivedInstanceCallback") in line


def test_the_gate_can_be_switched_off_and_then_registers_no_ingest_hook(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    migrate(f"sqlite:///{state}/tenant-clinic-7.sqlite", "state")
    sdk = fake_orthanc("4.0", configuration(state, Gate={"Enabled": False}),
                       [str(tmp_path / "config.json")])
    plugin = bootstrap.start(sdk)
    assert sdk.registrations == ["RegisterOnChangeCallback"]
    assert plugin.report.features == ("change-outbox",)


def test_the_outbox_records_lifecycle_changes_not_every_image_nor_server_noise() -> None:
    wanted = {"NewPatient", "NewStudy", "NewSeries", "StablePatient",
              "StableStudy", "StableSeries", "CompletedSeries", "Deleted",
              "UpdatedAttachment", "UpdatedMetadata"}
    assert {c.value for c in OUTBOX_CHANGES} == wanted


def test_start_up_stops_when_the_migrations_have_not_run(tmp_path: Path) -> None:
    sdk = fake_orthanc(configuration=configuration(tmp_path / "state"))
    with pytest.raises(StartupCheckFailed, match="no 'outbox' table: its migrations have not run"):
        bootstrap.start(sdk)
    assert sdk.registrations == []
    assert any(level == "error" and "cannot start" in m for level, m in sdk.logs)


def test_a_settings_error_stops_start_up_naming_the_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "archive.json").write_text('{"Archive": {"StateDirectory": "x", "Tenant": 42}}')
    sdk = fake_orthanc(configuration={"Archive": {"StateDirectory": "x", "Tenant": 42}},
                       arguments=[str(config)])
    with pytest.raises(ConfigError) as info:
        bootstrap.start(sdk)
    assert info.value.key == "Archive.Tenant"
    assert info.value.source == str(config / "archive.json")
    assert sdk.registrations == []


class FlakyOutbox:
    """A state database that fails the first ``failures`` appends with ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.rows: list[tuple[str, str, str]] = []

    def append(self, change_type: str, resource_type: str, resource_id: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.rows.append((change_type, resource_type, resource_id))


LOCKED = OperationalError("INSERT INTO outbox", {}, Exception("database is locked"))
EVENT = ChangeEvent(ChangeType.STABLE_STUDY.value, "Study", "s-42")


def test_a_transient_database_error_is_retried_with_a_bounded_back_off() -> None:
    outbox, sleeps = FlakyOutbox(2, LOCKED), list[float]()
    AppendChange(outbox, delays=(0.1, 0.5), sleep=sleeps.append)(EVENT)
    assert outbox.rows == [("StableStudy", "Study", "s-42")]
    assert sleeps == [0.1, 0.5]


def test_an_event_that_cannot_be_written_is_logged_with_its_fields(
        caplog: pytest.LogCaptureFixture) -> None:
    outbox, sleeps = FlakyOutbox(99, LOCKED), list[float]()
    with caplog.at_level(logging.ERROR, logger="regional_archive"):
        AppendChange(outbox, delays=(0.1, 0.5), sleep=sleeps.append)(EVENT)  # does not raise
    assert outbox.calls == 3 and sleeps == [0.1, 0.5]
    (record,) = caplog.records
    assert "NOT recorded" in record.getMessage()
    assert "change_type=StableStudy resource_type=Study resource_id=s-42" in record.getMessage()


def test_a_permanent_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    duplicate = IntegrityError("INSERT INTO outbox", {}, Exception("constraint"))
    outbox, sleeps = FlakyOutbox(1, duplicate), list[float]()
    with caplog.at_level(logging.ERROR, logger="regional_archive"):
        AppendChange(outbox, sleep=sleeps.append)(EVENT)
    assert outbox.calls == 1 and sleeps == []
    assert "resource_id=s-42" in caplog.records[0].getMessage()


def test_outbox_append_cost_on_sqlite_wal(tmp_path: Path, record_property: Any) -> None:
    """Micro-check, not a timed test: what one change event costs Orthanc's event thread.

    The time is reported (``record_property`` and the log), never asserted; what is asserted is
    that every append was committed.
    """
    url = f"sqlite:///{tmp_path}/tenant-bench.sqlite"
    migrate(url, "state")
    engine = make_engine(url)
    handler = AppendChange(Outbox(engine, "bench"))
    count = 500
    handler(ChangeEvent("NewInstance", "Instance", "warm-up"))
    started = time.perf_counter()
    for i in range(count):
        handler(ChangeEvent("NewInstance", "Instance", f"instance-{i:04d}"))
    per_append_ms = (time.perf_counter() - started) / count * 1000
    with engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        stored = len(conn.execute(select(OutboxRow.seq)).all())
    engine.dispose()
    assert journal == "wal"
    assert stored == count + 1
    record_property("outbox_append_ms", round(per_append_ms, 3))
    log.warning("outbox append on SQLite (WAL, synchronous=NORMAL): %.3f ms per change event "
                "over %d appends", per_append_ms, count)
