"""What the audit tests share: a migrated control database (real migrations, SQLite), a key,
a hand-moved clock, and a few events."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive_audit.chain import AuditLog
from archive_audit.events import AuditEvent
from archive_state.db import make_engine, migrate

KEY = bytes(range(32))
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
NAME = "王^小明"


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def control_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated control database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("control-template") / "control.sqlite"
    migrate(f"sqlite:///{path}", "control")
    return path


def control_url(template: Path, folder: Path) -> str:
    path = folder / "control.sqlite"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture()
def engine(control_template: Path, tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(control_url(control_template, tmp_path))
    yield made
    made.dispose()


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def audit(engine: Engine, clock: ManualClock) -> AuditLog:
    return AuditLog(engine, KEY, clock)


def view(actor: str = "li.lei", **extra: object) -> AuditEvent:
    values: dict[str, object] = {
        "action": "view", "outcome": "success", "actor": actor, "actor_kind": "user",
        "source_ip": "10.1.2.3", "tenant": "hosp-a", "patient_id": "P-001",
        "patient_name": NAME, "study_uid": "1.2.840.1", "resource": "/dicom-web/studies/1.2.840.1",
        "session": "s-1", "detail": {"count": 3}}
    values.update(extra)
    return AuditEvent(**values)  # type: ignore[arg-type]
