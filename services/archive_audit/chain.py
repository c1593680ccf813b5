"""The audit log: append events to one HMAC-SHA256 chain, and check that chain.

Each row's ``hash`` is ``HMAC-SHA256(key, prev_hash || canonical JSON of the row without hash)``
(:func:`archive_audit.records.canonical`), and its ``prev_hash`` is the hash of the row before
(64 zeros for the first). Whoever changes a field, removes a row or adds one without the key
breaks the chain at that row, and :meth:`AuditLog.verify` names it. What the chain cannot show
is the newest rows cut off together with the head set back (every earlier state was valid):
keep the head that :meth:`verify` reports somewhere else (a ticket, the operator's notes, an
external log) to detect that.

Writers serialise on the one-row ``audit_head``: ``SELECT … FOR UPDATE`` on PostgreSQL, the
write transaction's ``BEGIN IMMEDIATE`` on SQLite (:func:`archive_state.db.write`). Ids come from
the head (last id + 1), so they are consecutive.

The key is ``<StateDirectory>/audit-key`` (:func:`load_or_create_key`): 32 random bytes as hex,
mode 0600, made on first use. Back it up with the database: without it the chain cannot be
checked, and whoever holds it can rewrite the chain. Every archive whose
``Archive.Database.Control`` is the same database appends to the same chain, so they all need
the same key: the launcher checks it at start (:func:`check_key`) and refuses to make a new key
for a chain that has rows, or to go on with a key that did not sign the chain's newest row.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection, Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import is_postgresql, write
from archive_state.models_audit import GENESIS_HASH, AuditEventRow, AuditHeadRow

from .events import AuditEvent
from .records import AuditRecord, as_values, canonical, record_of, values_of
from .search import AuditFilter, AuditPage, search

log = logging.getLogger(__name__)

__all__ = ["AuditError", "AuditKeyError", "AuditLog", "VerifyResult", "chain_hash",
           "check_key", "key_path", "load_or_create_key", "signed_with"]

KEY_FILE = "audit-key"
KEY_BYTES = 32
#: Rows :meth:`AuditLog.verify` reads per query.
VERIFY_BATCH = 1000

_events = cast(Table, AuditEventRow.__table__)
_head = cast(Table, AuditHeadRow.__table__)

Problem = Literal["changed", "missing", "broken-link", "inserted", "head-mismatch"]


class AuditError(Exception):
    """The audit tables are not as this code expects (not migrated, head row gone)."""


class AuditKeyError(AuditError):
    """The key file exists but does not hold a key."""


def key_path(state_directory: str | Path) -> Path:
    return Path(state_directory) / KEY_FILE


def load_or_create_key(path: Path) -> bytes:
    """The chain's key from ``path``, made (random, 0600) when the file does not exist.

    Two processes starting together make one key: each writes a private temporary file and
    links it to ``path``, which fails for the second, which then reads the first one's key.
    A key file readable by others is made 0600 (with a warning).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
            log.info("made the audit key %s", path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("audit key %s was readable by others (mode %o): made 0600", path, mode)
        path.chmod(0o600)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise AuditKeyError(f"{path} does not hold an audit key ({KEY_BYTES * 2} hex digits); "
                            "restore it from the backup made with the database")
    return key


def chain_hash(key: bytes, prev_hash: str, values: dict[str, Any]) -> str:
    """The hash of a row whose columns are ``values`` (``prev_hash`` among them)."""
    return hmac.new(key, prev_hash.encode("ascii") + canonical(values), sha256).hexdigest()


def _newest_row(engine: Engine) -> AuditRecord | None:
    with engine.connect() as conn:
        row = conn.execute(select(_events).order_by(_events.c.id.desc()).limit(1)).first()
    return None if row is None else record_of(row)


def signed_with(key: bytes, record: AuditRecord) -> bool:
    """Whether ``record``'s hash was made with ``key``."""
    return hmac.compare_digest(chain_hash(key, record.prev_hash, as_values(record)), record.hash)


def check_key(engine: Engine, path: Path) -> bytes:
    """The key at ``path`` for the chain in ``engine`` (a migrated control database), made
    only while the chain has no row; :class:`AuditKeyError` when the file is missing although
    the chain has rows, or when the key did not sign the chain's newest row. Both mean the
    archives sharing this control database do not hold the same key (or that row was changed,
    which ``GET /api/audit/verify`` tells)."""
    newest = _newest_row(engine)
    if newest is None:
        return load_or_create_key(path)
    if not path.exists():
        raise AuditKeyError(
            f"{path} is missing, but the audit trail in the control database already has "
            f"{newest.id} row(s), signed with another key: copy the audit-key of the archive "
            "that signed them (every archive of one control database needs the same key) or "
            "restore it from the backup")
    key = load_or_create_key(path)
    if not signed_with(key, newest):
        raise AuditKeyError(
            f"the newest row of the audit trail (id {newest.id}) was not signed with {path}: "
            "every archive of one control database needs the same audit-key (copy it from the "
            "archive that signed the trail), or that row was changed (GET /api/audit/verify)")
    return key


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found: ``ok``, or the first bad row and why."""

    ok: bool
    checked: int
    head_id: int
    head_hash: str
    first_bad_id: int | None = None
    problem: Problem | None = None
    message: str | None = None


_MESSAGES: dict[Problem, str] = {
    "changed": "第 {id} 条记录的内容与其哈希不符（被改动）/ row {id}: its content does not "
               "match its hash (it was changed)",
    "missing": "第 {id} 条记录不存在（被删除）/ row {id} is missing (it was deleted)",
    "broken-link": "第 {id} 条记录与前一条记录的哈希不相连（前面的记录被改动或替换）/ row {id}: "
                   "its prev_hash is not the hash of the row before (that row was changed or "
                   "replaced)",
    "inserted": "第 {id} 条记录不在链中（被插入）/ row {id} is not part of the chain (it was "
                "inserted)",
    "head-mismatch": "链头与最后一条记录不符（第 {id} 条）/ the chain's head does not match its "
                     "last row ({id})",
}


def _bad(problem: Problem, row_id: int, checked: int, head_id: int,
         head_hash: str) -> VerifyResult:
    return VerifyResult(False, checked, head_id, head_hash, row_id, problem,
                        _MESSAGES[problem].format(id=row_id))


class AuditLog:
    """The audit trail in one control database (see the module docstring)."""

    def __init__(self, engine: Engine, key: bytes, clock: Clock = utc_now) -> None:
        if len(key) < 16:
            raise ValueError("the audit key must have at least 16 bytes")
        self._engine = engine
        self._key = key
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    def record(self, event: AuditEvent) -> None:
        """Append one event in its own transaction (the :class:`Recorder` protocol)."""
        with write(self._engine) as conn:
            self.append(conn, [event])

    def append(self, conn: Connection, events: Sequence[AuditEvent]) -> list[int]:
        """Append ``events`` inside the caller's write transaction (``conn`` from
        :func:`archive_state.db.write`), so they commit with whatever else it writes.
        Returns their ids."""
        if not events:
            return []
        head = conn.execute(select(_head).where(_head.c.id == 1).with_for_update()).one_or_none()
        if head is None:
            raise AuditError("audit_head has no row: the control database is not migrated "
                             "(or the row was deleted)")
        now = self._clock()
        last_id, last_hash = int(head.last_id), str(head.last_hash)
        rows: list[dict[str, Any]] = []
        for event in events:
            last_id += 1
            values = values_of(event, last_id, now)
            values["prev_hash"] = last_hash
            values["hash"] = last_hash = chain_hash(self._key, last_hash, values)
            rows.append(values)
        conn.execute(_events.insert(), rows)
        conn.execute(update(_head).where(_head.c.id == 1).values(
            last_id=last_id, last_hash=last_hash, updated_at=now))
        return [r["id"] for r in rows]

    def search(self, query: AuditFilter) -> AuditPage:
        return search(self._engine, query)

    def head(self) -> tuple[int, str]:
        with self._snapshot() as conn:
            row = conn.execute(select(_head).where(_head.c.id == 1)).one_or_none()
        if row is None:
            raise AuditError("audit_head has no row")
        return int(row.last_id), str(row.last_hash)

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One consistent view: WAL snapshot on SQLite, REPEATABLE READ on PostgreSQL."""
        with self._engine.connect() as conn:
            if is_postgresql(conn):
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def verify(self, batch: int = VERIFY_BATCH) -> VerifyResult:
        """Walk the chain from the first row and name the first row that breaks it."""
        with self._snapshot() as conn:
            head = conn.execute(select(_head).where(_head.c.id == 1)).one_or_none()
            if head is None:
                raise AuditError("audit_head has no row")
            head_id, head_hash = int(head.last_id), str(head.last_hash)
            checked, expected_id, previous = 0, 1, GENESIS_HASH
            for record in self._rows(conn, batch):
                if record.id > head_id or record.id < expected_id:
                    return _bad("inserted", record.id, checked, head_id, head_hash)
                if record.id != expected_id:
                    return _bad("missing", expected_id, checked, head_id, head_hash)
                if not signed_with(self._key, record):
                    return _bad("changed", record.id, checked, head_id, head_hash)
                if record.prev_hash != previous:
                    return _bad("broken-link", record.id, checked, head_id, head_hash)
                checked += 1
                expected_id, previous = record.id + 1, record.hash
        if expected_id - 1 != head_id:
            return _bad("missing", expected_id, checked, head_id, head_hash)
        if previous != head_hash:
            return _bad("head-mismatch", head_id, checked, head_id, head_hash)
        return VerifyResult(True, checked, head_id, head_hash)

    @staticmethod
    def _rows(conn: Connection, batch: int) -> Iterator[AuditRecord]:
        after: int | None = None
        while True:
            query = select(_events).order_by(_events.c.id).limit(batch)
            if after is not None:
                query = query.where(_events.c.id > after)
            rows = conn.execute(query).all()
            for row in rows:
                yield record_of(row)
            if len(rows) < batch:
                return
            after = int(rows[-1].id)
