"""Engines and migrations on real SQLite files, and several processes writing one file at once.

Children are forked (``PROCESS_START``): nothing is imported again, which keeps these tests fast
on a busy machine. They make their own engines and never touch the parent's connections. The
process bodies (``drain_worker``, ``migrate_worker``) are module-level so that the PostgreSQL
tests can reuse them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.exc import OperationalError

from archive_config.settings import JobSettings
from archive_state.db import make_engine, migrate, read, write
from archive_state.errors import MigrationError
from archive_state.jobs import JobQueue, JobState
from archive_state.models import ControlBase, StateBase

PROCESS_START: Literal["fork"] = "fork"

EXECUTIONS = Table(
    "executions",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("worker", String(64), nullable=False),
)


def drain_worker(url: str, worker_id: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    """A worker process: claim and complete jobs until none is left, recording each execution
    in its own transaction before ``succeed`` (so a job run twice leaves two rows)."""
    engine = make_engine(url)
    queue = JobQueue(engine, settings=JobSettings(lease_seconds=60))
    barrier.wait(timeout=60)
    while (job := queue.claim(worker_id)) is not None:
        with write(engine) as conn:
            conn.execute(EXECUTIONS.insert().values(job_id=job.id, worker=worker_id))
        queue.succeed(job.id, worker_id, {"worker": worker_id})
    engine.dispose()


def migrate_worker(url: str, tree: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait(timeout=60)
    migrate(url, "control" if tree == "control" else "state")


def run_processes(
    target: Callable[..., None], args: Sequence[tuple[Any, ...]], timeout: float = 60.0
) -> None:
    """Run ``target`` in one new process per ``args`` entry, each given a shared barrier as
    its last argument so that they all start the contended part together."""
    ctx = multiprocessing.get_context(PROCESS_START)
    barrier = ctx.Barrier(len(args))
    processes = [ctx.Process(target=target, args=(*a, barrier)) for a in args]
    for p in processes:
        p.start()
    try:
        for p in processes:
            p.join(timeout)
        assert [p.exitcode for p in processes] == [0] * len(processes)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join()


def run_jobs_in_processes(url: str, workers: int, jobs: int) -> None:
    """Enqueue ``jobs`` jobs, drain them with ``workers`` processes, and check that every job
    ran exactly once and succeeded."""
    engine = make_engine(url)
    try:
        EXECUTIONS.create(engine)
        queue = JobQueue(engine)
        ids = {queue.enqueue("noop", {"n": n}).id for n in range(jobs)}
        run_processes(drain_worker, [(url, f"worker-{n}") for n in range(workers)], timeout=120)
        with read(engine) as conn:
            runs = conn.execute(select(EXECUTIONS.c.job_id, EXECUTIONS.c.worker)).all()
        ran = [r.job_id for r in runs]
        assert len(ran) == len(set(ran)), "a job ran more than once"
        assert set(ran) == ids
        assert queue.counts()[JobState.SUCCEEDED] == jobs
        assert len({r.worker for r in runs}) > 1, "the workers did not run side by side"
    finally:
        engine.dispose()


def schema_differences(url: str, tree: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the migrated database match the models:
    empty when the migrations and the models agree."""
    metadata = ControlBase.metadata if tree == "control" else StateBase.metadata
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, parent: not (
                        kind == "table" and str(name).startswith("alembic_version")
                    ),
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def sqlite_url(tmp_path: Path, name: str = "state.sqlite") -> str:
    return f"sqlite:///{tmp_path / name}"


def test_sqlite_connections_are_set_up_for_several_writers(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_write_transactions_take_the_lock_at_begin(tmp_path: Path) -> None:
    """A second writer waits at BEGIN (where the busy timeout applies), not at its first write;
    readers are not blocked (WAL)."""
    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    impatient = make_engine(url, busy_timeout_seconds=0.2)
    try:
        with write(engine) as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with write(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            with pytest.raises(OperationalError, match="locked"):
                with write(impatient):
                    pass
            with read(impatient) as reader:
                assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
        with write(impatient) as conn:  # the lock is free again
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()
        impatient.dispose()


def test_urls_we_refuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in-memory"):
        make_engine("sqlite://")
    with pytest.raises(ValueError, match="psycopg"):
        make_engine("postgresql+psycopg2://u@localhost/db")
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql+pymysql://u@localhost/db")
    with pytest.raises(ValueError, match="tree"):
        migrate(sqlite_url(tmp_path), "jobs")  # type: ignore[arg-type]


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert migrate(url, "state") == migrate(url, "state") == "state_0004"
    engine = make_engine(url)
    try:
        with read(engine) as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version_state")).scalars().all() == ["state_0004"]
    finally:
        engine.dispose()


def test_control_and_state_can_share_one_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "both.sqlite")
    assert (migrate(url, "control"), migrate(url, "state")) == ("control_0003", "state_0004")


@pytest.mark.parametrize("tree", ["control", "state"])
def test_migrations_match_the_models(tmp_path: Path, tree: str) -> None:
    url = sqlite_url(tmp_path)
    migrate(url, tree)  # type: ignore[arg-type]
    assert schema_differences(url, tree) == []


def test_migration_failure_names_the_database(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with pytest.raises(MigrationError, match="state database"):
        migrate(f"sqlite:///{blocked}/state.sqlite", "state")


def test_concurrent_migrations_on_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    run_processes(migrate_worker, [(url, "state")] * 4)
    engine = make_engine(url)
    try:
        with read(engine) as conn:
            assert conn.execute(select(func.count()).select_from(text("alembic_version_state"))).scalar() == 1
    finally:
        engine.dispose()


def test_several_processes_claim_each_job_once_on_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url, "state")
    run_jobs_in_processes(url, workers=3, jobs=200)
