"""Service heartbeats in a real SQLite control database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive_state.db import make_engine, migrate
from archive_state.services import ServiceRegistry
from tests.unit.test_state_jobs import T0, ManualClock


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'control.sqlite'}"
    migrate(url, "control")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_beats_are_kept_per_service_and_host(engine: Engine) -> None:
    clock = ManualClock()
    here = ServiceRegistry(engine, clock=clock, host="node-a")
    there = ServiceRegistry(engine, clock=clock, host="node-b")
    here.beat("worker-1", "default", 100, "0.1.0", {"jobs": 0})
    there.beat("worker-1", "default", 200, "0.1.0", {})
    here.beat("api", "clinic-1", 300, "0.1.0", {})
    beats = here.list()
    assert [(b.tenant, b.name, b.host) for b in beats] == [
        ("clinic-1", "api", "node-a"),
        ("default", "worker-1", "node-a"),
        ("default", "worker-1", "node-b"),
    ]
    assert beats[1].detail == {"jobs": 0} and beats[1].beat_at == T0
    assert [b.name for b in here.list(tenant="clinic-1")] == ["api"]


def test_started_at_moves_only_with_a_new_pid(engine: Engine) -> None:
    clock = ManualClock()
    registry = ServiceRegistry(engine, clock=clock, host="node-a")
    registry.beat("worker-1", "default", 100, "0.1.0", {"jobs": 0})
    clock.advance(5)
    registry.beat("worker-1", "default", 100, "0.1.0", {"jobs": 2})
    (beat,) = registry.list()
    assert (beat.pid, beat.started_at, beat.beat_at, beat.detail) == (100, T0, clock.now, {"jobs": 2})
    clock.advance(5)
    registry.beat("worker-1", "default", 101, "0.2.0", {})  # restarted by the supervisor
    (beat,) = registry.list()
    assert (beat.pid, beat.version, beat.started_at) == (101, "0.2.0", clock.now)
