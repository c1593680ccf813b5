"""The quarantine spool (files) and its index (state database) on real SQLite files.

:class:`QuarantineContract` holds the index tests; ``tests/integration/test_quarantine_postgres.py``
runs the same class on PostgreSQL. The spool tests need no database.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from archive_state import quarantine_spool as spool
from archive_state.db import make_engine
from archive_state.errors import QuarantineConflict, QuarantineNotFound
from archive_state.quarantine import ORPHAN_REASON, QuarantineIndex, QuarantineStatus
from tests.unit.test_state_jobs import ManualClock, migrated_sqlite, sqlite_state_url  # noqa: F401

NAME = "张^伟"


def meta(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tenant": "default", "transport": "dimse",
        "remote": {"calling_aet": "CT_ROOM_1", "called_aet": "ARCHIVE", "ip": "10.0.0.7"},
        "reasons": [{"code": "pixel-vr", "tag": "(0028,0010)", "message": "Rows is SS, not US"}],
        "patient_id": "P-001", "patient_name": NAME, "sop_instance_uid": "1.2.3.4",
    }
    base.update(extra)
    return base


# --- the spool ---------------------------------------------------------------------------------


def test_write_then_read_keeps_bytes_and_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "quarantine"
    data = b"\x00" * 128 + b"DICM" + os.urandom(200)
    entry = spool.write(folder, data, meta())
    assert entry == spool.entry_id(data) and len(entry) == 64
    assert spool.data_path(folder, entry).read_bytes() == data
    found = spool.read_entry(folder, entry)
    assert found is not None
    assert found.meta["patient_name"] == NAME  # stored as UTF-8 text, not escaped
    assert NAME in (folder / f"{entry}.json").read_text(encoding="utf-8")
    assert set(found.meta) == set(spool.FIELDS)
    assert found.meta["size"] == len(data) and found.meta["parent"] is None
    assert found.meta["study_instance_uid"] is None
    assert found.meta["remote"]["calling_aet"] == "CT_ROOM_1"
    assert datetime.fromisoformat(found.meta["received_at"]).tzinfo is not None
    assert spool.list_entries(folder) == [entry]
    for name in (f"{entry}.dcm", f"{entry}.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_same_bytes_are_one_entry(tmp_path: Path) -> None:
    first = spool.write(tmp_path, b"same bytes", meta(transport="stow"))
    again = spool.write(tmp_path, b"same bytes", meta(transport="dimse", patient_id="other"))
    assert first == again
    found = spool.read_entry(tmp_path, first)
    assert found is not None and found.meta["transport"] == "stow"  # the first write stands
    assert spool.list_entries(tmp_path) == [first]


def test_bad_metadata_leaves_no_entry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="transport"):
        spool.write(tmp_path, b"x", meta(transport="carrier-pigeon"))
    with pytest.raises(ValueError, match="reason"):
        spool.write(tmp_path, b"x", meta(reasons=[{"tag": "(0010,0010)"}]))
    assert spool.list_entries(tmp_path) == []
    assert not list(tmp_path.iterdir())


def test_crash_leftovers_are_found_only_when_stale(tmp_path: Path) -> None:
    entry = spool.write(tmp_path, b"complete", meta())
    temp = tmp_path / f".{'a' * 64}.123.abcd.tmp"
    temp.write_bytes(b"half")
    orphan_data = b"bytes without metadata"
    orphan = spool.entry_id(orphan_data)
    spool.data_path(tmp_path, orphan).write_bytes(orphan_data)
    now = temp.stat().st_mtime
    assert spool.stale_temp_files(tmp_path, now=now) == []
    assert spool.orphans(tmp_path, now=now) == []
    later = now + spool.GRACE_SECONDS + 1
    assert spool.stale_temp_files(tmp_path, now=later) == [temp]
    assert spool.orphans(tmp_path, now=later) == [orphan]
    assert spool.list_entries(tmp_path) == [entry]  # neither is an entry


_WRITER = """
import os, sys
from pathlib import Path
from archive_state import quarantine_spool
folder = Path(sys.argv[1])
n = 0
while True:
    n += 1
    quarantine_spool.write(folder, os.urandom(256 * 1024) + str(n).encode(),
                           {"transport": "dimse", "reasons": [{"code": "test", "tag": None}]})
"""


def test_kill_9_during_writes_loses_nothing_that_was_written(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-stream: every entry is whole (bytes match their name),
    and what it was writing is at most a temp file or an orphan, which the importer handles."""
    folder = tmp_path / "quarantine"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)])
    try:
        deadline = time.monotonic() + 60
        while len(spool.list_entries(folder)) < 20:
            assert writer.poll() is None and time.monotonic() < deadline, "the writer stalled"
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    entries = spool.list_entries(folder)
    for entry in entries:
        data = spool.data_path(folder, entry).read_bytes()
        assert spool.entry_id(data) == entry
        found = spool.read_entry(folder, entry)
        assert found is not None and found.meta["size"] == len(data) > 256 * 1024
    later = time.time() + spool.GRACE_SECONDS + 1
    leftovers = spool.stale_temp_files(folder, now=later) + [
        spool.data_path(folder, i) for i in spool.orphans(folder, now=later)]
    assert len(leftovers) <= 2  # the one write in flight: its temp file, or its .dcm alone
    for orphan in spool.orphans(folder, now=later):
        assert spool.entry_id(spool.data_path(folder, orphan).read_bytes()) == orphan


def test_ids_are_checked_before_touching_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        spool.data_path(tmp_path, "../../etc/passwd")
    assert spool.read_entry(tmp_path, "0" * 64) is None


# --- the index ---------------------------------------------------------------------------------


class QuarantineContract:
    @pytest.fixture
    def engine(self, state_url: str) -> Iterator[Engine]:
        engine = make_engine(state_url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(datetime.now(timezone.utc))

    @pytest.fixture
    def index(self, engine: Engine, clock: ManualClock, tmp_path: Path) -> QuarantineIndex:
        return QuarantineIndex(engine, "default", tmp_path / "quarantine", clock=clock)

    def test_import_is_idempotent(self, index: QuarantineIndex, engine: Engine,
                                  clock: ManualClock) -> None:
        assert index.sync().imported == []  # no folder yet
        a = spool.write(index.folder, b"first", meta())
        b = spool.write(index.folder, b"second", meta(transport="stow", reasons=[
            {"code": "uid-syntax", "tag": "(0008,0018)", "message": "bad UID"},
            {"code": "pixel-vr", "tag": "(0028,0011)", "message": "Columns is SS"}]))
        assert sorted(index.sync().imported) == sorted([a, b])
        assert index.sync().imported == []
        other = QuarantineIndex(engine, "default", index.folder, clock=clock)
        assert other.sync().imported == []  # a second importer inserts nothing twice
        items, total = index.list()
        assert total == 2 and {i.id for i in items} == {a, b}
        entry = index.get(b)
        assert entry.status is QuarantineStatus.HELD and entry.transport == "stow"
        assert entry.reason_codes == ["pixel-vr", "uid-syntax"]
        assert entry.patient_name == NAME and entry.remote["ip"] == "10.0.0.7"
        assert index.reason_counts() == {"pixel-vr": 2, "uid-syntax": 1}

    def test_stow_sets_the_origin_of_what_the_gate_saw_as_rest(self, index: QuarantineIndex) -> None:
        rest = spool.write(index.folder, b"uploaded", meta(transport="rest", remote={}))
        dimse = spool.write(index.folder, b"stored", meta(transport="dimse"))
        index.sync()
        index.set_origin(rest, "stow", {"ip": "10.1.2.3"})
        index.set_origin(dimse, "stow", {"ip": "10.1.2.3"})  # not an upload: left as it is
        assert (index.get(rest).transport, index.get(rest).remote) == ("stow", {"ip": "10.1.2.3"})
        assert index.get(dimse).transport == "dimse"
        with pytest.raises(ValueError):
            index.set_origin(rest, "carrier-pigeon", {})

    def test_filters_and_paging(self, index: QuarantineIndex) -> None:
        t0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
        made = []
        for n in range(5):
            made.append(spool.write(index.folder, f"entry {n}".encode(), meta(
                received_at=(t0 + timedelta(hours=n)).isoformat(),
                transport="stow" if n % 2 else "dimse",
                patient_id=f"P-{n}", patient_name=NAME if n < 2 else "李^娜",
                reasons=[{"code": "charset" if n == 4 else "pixel-vr", "tag": None,
                          "message": ""}])))
        index.sync()
        newest_first, total = index.list()
        assert total == 5 and [e.id for e in newest_first] == made[::-1]
        page, total = index.list(limit=2, offset=2)
        assert total == 5 and [e.id for e in page] == [made[2], made[1]]
        assert {e.id for e in index.list(transport="stow")[0]} == {made[1], made[3]}
        assert [e.id for e in index.list(reason="charset")[0]] == [made[4]]
        assert {e.id for e in index.list(patient="张")[0]} == {made[0], made[1]}
        assert [e.id for e in index.list(patient="p-3")[0]] == [made[3]]
        window = index.list(since=t0 + timedelta(hours=1), until=t0 + timedelta(hours=3))[0]
        assert {e.id for e in window} == {made[1], made[2]}
        assert index.list(patient="%")[1] == 0  # a LIKE wildcard is a plain character here
        index.discard(made[0], by="admin")
        assert {e.id for e in index.list(status="held")[0]} == set(made[1:])
        assert index.reason_counts(status="held") == {"charset": 1, "pixel-vr": 3}

    def test_crash_leftovers_are_cleaned_and_orphans_adopted(
            self, index: QuarantineIndex, clock: ManualClock) -> None:
        index.folder.mkdir(parents=True)
        temp = index.folder / f".{'b' * 64}.1.ffff.tmp"
        temp.write_bytes(b"half written")
        orphan_data = b"the bytes arrived, the metadata did not"
        orphan = spool.entry_id(orphan_data)
        spool.data_path(index.folder, orphan).write_bytes(orphan_data)
        report = index.sync()
        assert report.temp_files_removed == 0 and report.adopted == []  # may be in progress
        assert temp.exists()
        clock.advance(spool.GRACE_SECONDS + 5)
        report = index.sync()
        assert report.temp_files_removed == 1 and not temp.exists()
        assert report.adopted == [orphan] and report.imported == [orphan]
        entry = index.get(orphan)
        assert entry.reason_codes == [ORPHAN_REASON] and entry.transport == "unknown"
        assert index.data(orphan) == orphan_data

    def test_vanished_files_are_reported_not_dropped(self, index: QuarantineIndex) -> None:
        entry = spool.write(index.folder, b"will vanish", meta())
        index.sync()
        saved = (index.folder / f"{entry}.json").read_bytes()
        (index.folder / f"{entry}.json").unlink()
        spool.data_path(index.folder, entry).unlink()
        report = index.sync()
        assert report.missing == [entry]
        gone = index.get(entry)
        assert gone.status is QuarantineStatus.HELD and gone.files_missing_at is not None
        assert index.list()[1] == 1
        with pytest.raises(QuarantineConflict):
            index.data(entry)
        spool.data_path(index.folder, entry).write_bytes(b"will vanish")
        (index.folder / f"{entry}.json").write_bytes(saved)
        assert index.sync().restored == [entry]
        assert index.get(entry).files_missing_at is None

    def test_metadata_without_bytes_is_flagged(self, index: QuarantineIndex) -> None:
        kept = spool.write(index.folder, b"bytes lost later", meta())
        index.sync()
        spool.data_path(index.folder, kept).unlink()
        fresh = spool.write(index.folder, b"bytes lost before the import", meta())
        spool.data_path(index.folder, fresh).unlink()
        report = index.sync()
        assert report.imported == [fresh] and sorted(report.missing) == sorted([kept, fresh])
        assert index.get(kept).files_missing_at is not None
        assert index.get(fresh).files_missing_at is not None

    def test_discard_updates_the_row_then_deletes_the_files(self, index: QuarantineIndex) -> None:
        entry = spool.write(index.folder, b"to discard", meta())
        index.sync()
        done = index.discard(entry, by="admin@10.0.0.9")
        assert done.status is QuarantineStatus.DISCARDED and done.status_by == "admin@10.0.0.9"
        assert [h["status"] for h in done.history] == ["held", "discarded"]
        assert not spool.data_path(index.folder, entry).exists()
        assert spool.read_entry(index.folder, entry) is None
        assert index.discard(entry, by="someone else").status_by == "admin@10.0.0.9"
        report = index.sync()
        assert report.missing == []  # a discarded entry has no files on purpose
        with pytest.raises(QuarantineConflict):
            index.mark_reingested(entry, "orthanc-id", {"kind": "reingest"}, by="admin")

    def test_a_discard_cut_short_is_finished_by_the_import(
            self, index: QuarantineIndex, clock: ManualClock) -> None:
        data = b"discard crashed before unlinking"
        entry = spool.write(index.folder, data, meta())
        index.sync()
        saved = (index.folder / f"{entry}.json").read_bytes()
        clock.advance(1)  # the discard comes after the arrival
        index.discard(entry, by="admin")
        spool.data_path(index.folder, entry).write_bytes(data)  # as if the unlinks never ran
        (index.folder / f"{entry}.json").write_bytes(saved)
        assert index.sync().discard_finished == [entry]
        assert spool.list_entries(index.folder) == []

    def test_the_same_bytes_after_a_discard_are_held_again(
            self, index: QuarantineIndex, clock: ManualClock) -> None:
        entry = spool.write(index.folder, b"sent again", meta())
        index.sync()
        index.discard(entry, by="admin")
        clock.advance(60)
        spool.write(index.folder, b"sent again", meta(received_at=clock().isoformat()))
        assert index.sync().held_again == [entry]
        again = index.get(entry)
        assert again.status is QuarantineStatus.HELD
        assert [h["status"] for h in again.history] == ["held", "discarded", "held"]

    def test_reingested_keeps_the_bytes_and_who(self, index: QuarantineIndex) -> None:
        entry = spool.write(index.folder, b"fixed later", meta())
        index.sync()
        held = index.record_attempt(entry, {"kind": "fix", "result": "quarantined",
                                            "entry": "c" * 64}, by="admin")
        assert held.status is QuarantineStatus.HELD
        assert held.last_attempt is not None and held.last_attempt["result"] == "quarantined"
        done = index.mark_reingested(entry, "abcd-1234", {"kind": "fix", "result": "stored"},
                                     by="admin")
        assert done.status is QuarantineStatus.REINGESTED and done.reingested_as == "abcd-1234"
        assert done.status_by == "admin" and index.data(entry) == b"fixed later"
        with pytest.raises(QuarantineConflict):
            index.mark_reingested(entry, "again", {}, by="admin")
        child = spool.write(index.folder, b"child", meta())
        index.sync()
        index.link_parent(child, entry)
        assert index.get(child).parent == entry

    def test_unknown_ids(self, index: QuarantineIndex) -> None:
        with pytest.raises(QuarantineNotFound):
            index.get("f" * 64)
        with pytest.raises(QuarantineNotFound):
            index.get("not-an-id")
        with pytest.raises(QuarantineNotFound):
            index.discard("f" * 64, by=None)

    def test_a_quiet_folder_is_not_read_again(self, index: QuarantineIndex,
                                              clock: ManualClock) -> None:
        entry = spool.write(index.folder, b"quiet", meta())
        clock.advance(10)  # the folder's change is older than its timestamp's granularity
        assert index.sync().imported == [entry]
        assert index.sync().imported == []
        (index.folder / f"{entry}.json").unlink()
        assert index.sync().missing == [entry]  # an unlink changes the folder: seen at once


class TestQuarantineSQLite(QuarantineContract):
    @pytest.fixture
    def state_url(self, migrated_sqlite: Path, tmp_path: Path) -> str:  # noqa: F811
        return sqlite_state_url(migrated_sqlite, tmp_path)
