"""Engines, transactions and migrations for the control and state databases.

Several processes write the same database at once: Orthanc's plugin (the outbox), the API
service and every worker. On PostgreSQL that is ordinary. On SQLite it needs three settings on
every connection, made here once:

- ``journal_mode=WAL``: readers never block the writer nor the writer the readers
  (https://sqlite.org/wal.html);
- ``busy_timeout``: a writer that finds the database locked waits (up to 10 s) instead of failing
  with ``SQLITE_BUSY`` at once;
- ``BEGIN IMMEDIATE`` for write transactions (:func:`write`): the write lock is taken when the
  transaction starts, where the busy timeout applies. A deferred ``BEGIN`` that reads and then
  writes would upgrade its lock mid-way and SQLite answers ``SQLITE_BUSY`` without waiting when
  another writer committed since the read (https://sqlite.org/lang_transaction.html). With every
  write transaction immediate, writers from several processes queue instead of failing.

To control ``BEGIN`` ourselves the sqlite3 driver's own implicit transactions are switched off
(``isolation_level = None``), as SQLAlchemy's documentation recommends for pysqlite.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from .errors import MigrationError

logger = logging.getLogger(__name__)

Tree = Literal["control", "state"]

BUSY_TIMEOUT_SECONDS = 10.0
_WRITE_OPTION = "archive_state_write"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_lock keys, one per tree: two processes starting at once migrate one after the other.
_MIGRATION_LOCK_KEYS: dict[str, int] = {"control": 0x41524348_00000001, "state": 0x41524348_00000002}


def make_engine(url: str, *, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS, **kwargs: Any) -> Engine:
    """An engine for ``sqlite:///<path>`` or ``postgresql+psycopg://…``, set up for several
    processes writing at once (see the module docstring). ``busy_timeout_seconds`` is how long a
    SQLite writer waits for the lock; ``kwargs`` go to :func:`sqlalchemy.create_engine`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("the state databases must be SQLite files, not in-memory databases")
        connect_args = {
            "timeout": busy_timeout_seconds,
            "check_same_thread": False,
            **kwargs.pop("connect_args", {}),
        }
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_connect(int(busy_timeout_seconds * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ValueError("PostgreSQL URLs must use psycopg 3: 'postgresql+psycopg://…'")
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}")


def _sqlite_connect(busy_timeout_ms: int) -> Callable[[sqlite3.Connection, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (_sqlite_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            _switch_to_wal(cursor, busy_timeout_ms / 1000)
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _switch_to_wal(cursor: sqlite3.Cursor, timeout_seconds: float) -> None:
    """Put the database in WAL mode, waiting up to ``timeout_seconds`` for the lock that needs.

    The mode is stored in the file, so this only changes something the first time. That first
    change takes an exclusive lock, and SQLite can answer ``database is locked`` at once there
    instead of calling the busy handler (when several processes open a new file together, as
    the services do on a first start), so it is retried here until the timeout.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            continue
        if mode is not None and str(mode[0]).lower() == "wal":
            return
        raise sqlite3.OperationalError(f"the database stayed in journal mode {mode!r}, not WAL")


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_postgresql(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, an ordinary one on
    PostgreSQL. Commits when the block ends, rolls back if it raises."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot on SQLite (WAL), READ COMMITTED on
    PostgreSQL."""
    with engine.connect() as conn, conn.begin():
        yield conn


def migrate(url: str, tree: Tree) -> str:
    """Bring the ``control`` or ``state`` database at ``url`` to the newest schema; returns the
    revision it is at.

    Runs Alembic's ``upgrade head`` in-process with the migrations shipped in this package (no
    ``alembic.ini``). Safe when several processes start at once: on PostgreSQL they queue on an
    advisory lock, on SQLite on the ``BEGIN IMMEDIATE`` that wraps the whole upgrade (SQLite's
    DDL is transactional), so the second finds the schema current and does nothing.
    """
    # Alembic is imported here, not at module level: the Orthanc plugin writes the outbox
    # through this package but never migrates, and does not carry Alembic.
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if tree not in _MIGRATION_LOCK_KEYS:
        raise ValueError(f"unknown migration tree {tree!r}: 'control' or 'state'")
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS / tree))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_table", f"alembic_version_{tree}")
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if is_postgresql(conn):
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEYS[tree]})
                conn.commit()
            try:
                conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
            finally:
                if is_postgresql(conn):
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEYS[tree]}
                    )
                    conn.commit()
    except Exception as exc:
        safe = make_url(url).render_as_string(hide_password=True)
        raise MigrationError(f"migrating the {tree} database {safe} failed: {exc}") from exc
    finally:
        engine.dispose()
    logger.info("%s database at revision %s", tree, head)
    return head or ""

