"""The change outbox on real SQLite files; :class:`OutboxContract` runs on PostgreSQL too
(``tests/integration/test_state_postgres.py``)."""

from __future__ import annotations

import multiprocessing.synchronize
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import Engine

from archive_state.db import make_engine, migrate, read, write
from archive_state.models import OutboxRow
from archive_state.outbox import Change, Outbox
from tests.unit.test_state_db import run_processes
from tests.unit.test_state_jobs import ManualClock, sqlite_state_url
from tests.unit.test_state_jobs import migrated_sqlite  # noqa: F401  (a fixture, used by name)


class OutboxContract:
    @pytest.fixture
    def engine(self, state_url: str) -> Iterator[Engine]:
        engine = make_engine(state_url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def outbox(self, engine: Engine, clock: ManualClock) -> Outbox:
        return Outbox(engine, "default", lease_seconds=60, clock=clock)

    def test_consume_hands_out_changes_in_order_once(self, outbox: Outbox) -> None:
        for n in range(5):
            outbox.append("NewInstance", "Instance", f"i{n}")
        seen: list[Change] = []
        assert outbox.pending("catalogue") == 5
        assert outbox.consume("catalogue", seen.extend, limit=3) == 3
        assert outbox.consume("catalogue", seen.extend, limit=3) == 2
        assert outbox.consume("catalogue", seen.extend) == 0
        assert [c.resource_id for c in seen] == [f"i{n}" for n in range(5)]
        assert [c.seq for c in seen] == sorted(c.seq for c in seen)
        assert (seen[0].change_type, seen[0].resource_type, seen[0].tenant) == ("NewInstance", "Instance", "default")
        assert seen[0].created_at.tzinfo is not None
        assert outbox.pending("catalogue") == 0

    def test_cursor_stays_when_the_handler_fails(self, outbox: Outbox) -> None:
        outbox.append("StableStudy", "Study", "s1")

        def broken(changes: Sequence[Change]) -> None:
            raise RuntimeError("RIS unreachable")

        with pytest.raises(RuntimeError):
            outbox.consume("ris", broken)
        assert outbox.pending("ris") == 1
        seen: list[Change] = []
        assert outbox.consume("ris", seen.extend) == 1  # delivered again: at least once
        assert [c.resource_id for c in seen] == ["s1"]

    def test_consumers_and_tenants_have_their_own_cursors(self, engine: Engine, outbox: Outbox, clock: ManualClock) -> None:
        other_tenant = Outbox(engine, "clinic-1", clock=clock)
        outbox.append("NewStudy", "Study", "a")
        other_tenant.append("NewStudy", "Study", "b")
        seen_a: list[Change] = []
        seen_b: list[Change] = []
        assert outbox.consume("one", seen_a.extend) == 1
        assert outbox.consume("two", seen_b.extend) == 1
        assert [c.resource_id for c in seen_a] == [c.resource_id for c in seen_b] == ["a"]
        assert other_tenant.pending("one") == 1

    def test_one_consumer_at_a_time(self, engine: Engine, outbox: Outbox, clock: ManualClock) -> None:
        rival = Outbox(engine, "default", lease_seconds=60, clock=clock)
        outbox.append("NewInstance", "Instance", "i1")
        rival_got: list[int] = []

        def handler(changes: Sequence[Change]) -> None:
            # While we handle the batch, the same consumer elsewhere gets nothing.
            rival_got.append(rival.consume("catalogue", lambda c: None))

        assert outbox.consume("catalogue", handler) == 1
        assert rival_got == [0]
        assert outbox.pending("catalogue") == 0

    def test_a_stale_consumer_loses_its_batch_to_the_next(
        self, engine: Engine, outbox: Outbox, clock: ManualClock
    ) -> None:
        rival = Outbox(engine, "default", lease_seconds=60, clock=clock)
        outbox.append("NewInstance", "Instance", "i1")
        rival_seen: list[Change] = []

        def slow(changes: Sequence[Change]) -> None:
            clock.advance(61)  # the handler outlives its lease; another process takes over
            assert rival.consume("catalogue", rival_seen.extend) == 1

        assert outbox.consume("catalogue", slow) == 0  # its cursor update is refused
        assert [c.resource_id for c in rival_seen] == ["i1"]
        assert outbox.pending("catalogue") == 0

    def test_append_refuses_empty_fields(self, outbox: Outbox) -> None:
        with pytest.raises(ValueError):
            outbox.append("NewInstance", "Instance", "")


class TestOutboxSQLite(OutboxContract):
    @pytest.fixture
    def state_url(self, migrated_sqlite: Path, tmp_path: Path) -> str:
        return sqlite_state_url(migrated_sqlite, tmp_path)


HANDLED = Table(
    "handled",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("consumer", String(64), nullable=False),
)


def outbox_role(url: str, role: str, name: str, count: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    """A process that appends ``count`` changes (role ``append``) or consumes the ``catalogue``
    consumer's changes until all ``count`` changes exist and none is pending (role ``consume``)."""
    engine = make_engine(url)
    outbox = Outbox(engine, "default")
    barrier.wait(timeout=60)
    if role == "append":
        for n in range(count):
            outbox.append("NewInstance", "Instance", f"{name}-{n}")
    else:

        def record(changes: Sequence[Change]) -> None:
            with write(engine) as conn:
                conn.execute(HANDLED.insert(), [{"seq": c.seq, "consumer": name} for c in changes])

        # Until every change has been appended and the cursor is past all of them. A change
        # the cursor skipped (a gap) is then missing from HANDLED, which the test checks.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if outbox.consume("catalogue", record, limit=20) == 0:
                with read(engine) as conn:
                    appended = conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
                if appended >= count and outbox.pending("catalogue") == 0:
                    break
                time.sleep(0.01)
    engine.dispose()


def run_outbox_processes(url: str, appenders: int, consumers: int, per_appender: int) -> None:
    """Appenders and consumers side by side: every change is handled, exactly once (no lease
    expires in this test), and none is skipped."""
    engine = make_engine(url)
    try:
        HANDLED.create(engine)
        total = appenders * per_appender
        roles = [(url, "append", f"a{n}", per_appender) for n in range(appenders)]
        roles += [(url, "consume", f"c{n}", total) for n in range(consumers)]
        run_processes(outbox_role, roles, timeout=90)
        with read(engine) as conn:
            handled: list[int] = list(conn.execute(select(HANDLED.c.seq)).scalars())
            appended: list[int] = list(conn.execute(select(OutboxRow.seq)).scalars())
        assert len(appended) == total
        assert sorted(handled) == sorted(appended)
        assert Outbox(engine, "default").pending("catalogue") == 0
    finally:
        engine.dispose()


def test_appenders_and_consumers_in_several_processes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    migrate(url, "state")
    run_outbox_processes(url, appenders=2, consumers=2, per_appender=100)
