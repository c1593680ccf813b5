"""The audit chain on a real migrated SQLite control database: record, verify, tampering of
every kind named at its row, several processes appending to one chain, the key file."""

from __future__ import annotations

import json
import logging
import multiprocessing.synchronize
import stat
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine

from archive_audit.chain import (AuditKeyError, AuditLog, chain_hash, check_key,
                                 load_or_create_key)
from archive_audit.events import AuditEvent
from archive_audit.records import FIELDS, canonical
from archive_audit.search import AuditFilter
from archive_state.db import make_engine, read, write
from archive_state.models import ControlBase
from archive_state.models_audit import GENESIS_HASH
from tests.unit._audit_env import (KEY, NAME, T0, ManualClock, audit, clock,  # noqa: F401
                                   control_template, control_url, engine, view)
from tests.unit.test_state_db import run_processes

AUDIT_TABLES = {"audit_events", "audit_head", "audit_door_log"}


def _rows(engine: Engine) -> list[dict[str, object]]:
    with read(engine) as conn:
        rows = conn.execute(text("SELECT * FROM audit_events ORDER BY id"))
        return [dict(r._mapping) for r in rows]


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with write(engine) as conn:
        conn.execute(text(statement), params)


def _table(diff: Any) -> str | None:
    """The table one of Alembic's autogenerate differences is about."""
    op = diff[0] if isinstance(diff, list) else diff
    kind = str(op[0])
    if kind in ("add_table", "remove_table"):
        return str(op[1].name)
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return str(op[1].table.name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(op[2])
    return None


def test_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, ControlBase.metadata)
    assert AUDIT_TABLES <= set(ControlBase.metadata.tables)
    assert [d for d in differences if _table(d) in AUDIT_TABLES] == []


def test_record_then_verify(audit: AuditLog, engine: Engine, clock: ManualClock) -> None:
    audit.record(view())
    clock.advance(5)
    audit.record(AuditEvent("login", "success", "王医生", "user", source_ip="10.0.0.9"))
    audit.record(AuditEvent("dicom-refused", "denied", "CT_ROOM_1", "dicom", at=T0))
    rows = _rows(engine)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["prev_hash"] == rows[1]["hash"]
    assert rows[0]["patient_name"] == NAME and rows[1]["actor"] == "王医生"
    result = audit.verify()
    assert result.ok and result.checked == 3 and result.first_bad_id is None
    assert (result.head_id, result.head_hash) == (3, rows[2]["hash"]) == (3, audit.head()[1])


def test_hash_is_hmac_of_prev_and_canonical_json(audit: AuditLog, engine: Engine) -> None:
    audit.record(view(detail={"b": 1, "a": "甲"}))
    record = audit.search(AuditFilter()).items[0]
    values = _values(audit, 1)
    body = canonical(values)
    assert body.startswith(b'{"action":"view","actor":"li.lei"')
    assert '"detail":{"a":"甲","b":1}'.encode() in body
    assert record.hash == chain_hash(KEY, GENESIS_HASH, values)
    assert AuditLog(engine, b"another key of 32 bytes........").verify().problem == "changed"


def test_values_are_normalised_before_hashing(audit: AuditLog, engine: Engine) -> None:
    audit.record(view(actor="x" * 500, resource="/a\x00b", detail={"at": T0, "n": [1, 2]}))
    row = _rows(engine)[0]
    assert row["actor"] == "x" * 200 and row["resource"] == "/a\ufffdb"
    assert audit.search(AuditFilter()).items[0].detail == {
        "at": str(T0), "n": [1, 2]}
    assert audit.verify().ok


def test_naive_time_is_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="naive"):
        audit.record(view(at=T0.replace(tzinfo=None)))


@pytest.fixture()
def five(audit: AuditLog) -> AuditLog:
    for n in range(5):
        audit.record(view(actor=f"user-{n}"))
    assert audit.verify().ok
    return audit


def test_a_changed_field_is_named(five: AuditLog, engine: Engine) -> None:
    _sql(engine, "UPDATE audit_events SET patient_name = :n WHERE id = 3", n="李^四")
    result = five.verify()
    assert not result.ok and result.first_bad_id == 3 and result.problem == "changed"
    assert result.checked == 2
    assert result.message is not None and "第 3 条" in result.message and "row 3" in result.message


def test_a_changed_detail_or_time_is_named(five: AuditLog, engine: Engine) -> None:
    _sql(engine, "UPDATE audit_events SET detail = :d WHERE id = 2", d='{"count": 4}')
    assert (five.verify().first_bad_id, five.verify().problem) == (2, "changed")
    _sql(engine, "UPDATE audit_events SET detail = :d WHERE id = 2", d='{"count": 3}')
    assert five.verify().ok  # the same JSON again: the row is whole again
    _sql(engine, "UPDATE audit_events SET at = '2026-12-01 08:00:00.000000' WHERE id = 4")
    assert five.verify().first_bad_id == 4


def test_a_deleted_row_is_named(five: AuditLog, engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE id = 2")
    result = five.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 2, "missing")


def test_a_deleted_last_row_is_named(five: AuditLog, engine: Engine) -> None:
    _sql(engine, "DELETE FROM audit_events WHERE id = 5")
    result = five.verify()
    assert (result.first_bad_id, result.problem, result.checked) == (5, "missing", 4)


def test_an_inserted_row_is_named(five: AuditLog, engine: Engine) -> None:
    forged = dict(_rows(engine)[-1])
    forged.update(id=6, actor="intruder", prev_hash=forged["hash"], hash="f" * 64)
    if not isinstance(forged["detail"], str):  # PostgreSQL's jsonb reads back as a dict
        forged["detail"] = json.dumps(forged["detail"])
    columns = ", ".join(forged)
    _sql(engine, f"INSERT INTO audit_events ({columns}) VALUES "
                 f"({', '.join(':' + c for c in forged)})", **forged)
    result = five.verify()
    assert (result.first_bad_id, result.problem) == (6, "inserted")
    # moving the head along does not help without the key: the row's hash is wrong
    _sql(engine, "UPDATE audit_head SET last_id = 6, last_hash = :h", h="f" * 64)
    assert (five.verify().first_bad_id, five.verify().problem) == (6, "changed")


def test_a_replaced_row_breaks_the_link(five: AuditLog, engine: Engine) -> None:
    """A row re-hashed with the key but not its successor: the successor's link is broken."""
    values = {**_values(five, 3), "actor": "someone-else"}
    forged = chain_hash(KEY, values["prev_hash"], values)
    _sql(engine, "UPDATE audit_events SET actor = :a, hash = :h WHERE id = 3", a="someone-else",
         h=forged)
    result = five.verify()
    assert (result.first_bad_id, result.problem) == (4, "broken-link")


def _values(audit: AuditLog, row_id: int) -> dict[str, Any]:
    """A stored row's hashed columns, as read back."""
    record = next(r for r in audit.search(AuditFilter(limit=1000)).items if r.id == row_id)
    return {name: getattr(record, name) for name in FIELDS}


def test_a_head_set_back_is_named(five: AuditLog, engine: Engine) -> None:
    _sql(engine, "UPDATE audit_head SET last_hash = :h", h="0" * 64)
    assert (five.verify().problem, five.verify().first_bad_id) == ("head-mismatch", 5)


def test_verify_reads_in_batches(five: AuditLog) -> None:
    assert five.verify(batch=2).ok and five.verify(batch=2).checked == 5


def test_empty_chain_verifies(audit: AuditLog) -> None:
    result = audit.verify()
    assert result.ok and result.checked == 0 and result.head_hash == GENESIS_HASH


def append_worker(url: str, writer: int, count: int,
                  barrier: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    log = AuditLog(engine, KEY)
    barrier.wait(timeout=60)
    for n in range(count):
        log.record(AuditEvent("view", "success", f"writer-{writer}", "user", detail={"n": n}))
    engine.dispose()


def test_concurrent_writers_from_processes_keep_one_chain(control_template: Path,
                                                          tmp_path: Path) -> None:
    url = control_url(control_template, tmp_path)
    run_processes(append_worker, [(url, w, 25) for w in range(4)], timeout=120)
    engine = make_engine(url)
    try:
        log = AuditLog(engine, KEY)
        result = log.verify()
        assert result.ok and result.checked == 100 and result.head_id == 100
        counts: dict[str, int] = {}
        for row in _rows(engine):
            counts[str(row["actor"])] = counts.get(str(row["actor"]), 0) + 1
        assert counts == {f"writer-{w}": 25 for w in range(4)}
    finally:
        engine.dispose()


def test_key_is_made_0600_once_and_read_again(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit-key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert not [p for p in path.parent.iterdir() if p.name != "audit-key"]  # no temporary left


def test_lax_key_file_is_made_private(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit-key"
    key = load_or_create_key(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "readable by others" in caplog.text


def test_a_broken_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-key"
    path.write_text("not hex\n")
    path.chmod(0o600)
    with pytest.raises(AuditKeyError, match="audit-key"):
        load_or_create_key(path)


def test_check_key_makes_a_key_only_for_an_empty_trail(engine: Engine, tmp_path: Path) -> None:
    """Archives that share one control database sign one chain: a second archive without the
    first one's key, or with a key of its own, is refused before it writes a row."""
    first = tmp_path / "city" / "audit-key"
    key = check_key(engine, first)  # a new trail: the key is made
    assert load_or_create_key(first) == key
    AuditLog(engine, key).record(view())
    second = tmp_path / "town" / "audit-key"
    with pytest.raises(AuditKeyError, match="is missing.*1 row"):
        check_key(engine, second)
    assert not second.exists()
    load_or_create_key(second)  # a key of its own
    with pytest.raises(AuditKeyError, match="id 1.*not signed with"):
        check_key(engine, second)
    second.write_bytes(first.read_bytes())
    assert check_key(engine, second) == key and check_key(engine, first) == key
