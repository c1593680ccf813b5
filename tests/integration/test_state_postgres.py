"""The database layer on a real PostgreSQL 15 (a private cluster, ``postgres`` fixture).

The queue and outbox contracts of the unit tests run here unchanged, then what only several
processes on one server can show: workers that never run a job twice (``FOR UPDATE SKIP
LOCKED``), a worker killed with SIGKILL whose job is re-claimed after its lease and completes
once, concurrent migrations, and outbox appends that never leave a gap behind a consumer.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import func, select, text

from archive_config.settings import JobSettings
from archive_state.db import make_engine, migrate, read, write
from archive_state.jobs import Job, JobQueue, JobState
from testkit.postgres import PostgresCluster
from tests.unit.test_state_db import (
    EXECUTIONS,
    PROCESS_START,
    migrate_worker,
    run_jobs_in_processes,
    run_processes,
    schema_differences,
)
from tests.unit.test_state_jobs import QueueContract
from tests.unit.test_state_outbox import OutboxContract, run_outbox_processes

# The database layer on PostgreSQL: no Orthanc involved, so not run again on trixie's.
pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]

T = TypeVar("T")
_databases = itertools.count()
LEASE_SECONDS = 1.0


def new_database(postgres: PostgresCluster, tree: str | None = "state") -> str:
    url = postgres.url(f"test_{os.getpid()}_{next(_databases)}")
    if tree is not None:
        migrate(url, "control" if tree == "control" else "state")
    return url


@pytest.fixture(scope="module")
def state_template(postgres: PostgresCluster) -> str:
    """A migrated state database that each contract test gets a copy of."""
    name = f"template_state_{os.getpid()}"
    migrate(postgres.url(name), "state")
    return name


def state_copy(postgres: PostgresCluster, template: str) -> str:
    return postgres.url(f"test_{os.getpid()}_{next(_databases)}", template=template)


def poll(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class TestQueuePostgres(QueueContract):
    @pytest.fixture
    def state_url(self, postgres: PostgresCluster, state_template: str) -> str:
        return state_copy(postgres, state_template)


class TestOutboxPostgres(OutboxContract):
    @pytest.fixture
    def state_url(self, postgres: PostgresCluster, state_template: str) -> str:
        return state_copy(postgres, state_template)


@pytest.mark.parametrize("tree", ["control", "state"])
def test_migrations_match_the_models(postgres: PostgresCluster, tree: str) -> None:
    url = new_database(postgres, tree)
    assert schema_differences(url, tree) == []


def test_concurrent_migrations(postgres: PostgresCluster) -> None:
    """Four processes start at once, two per tree, on one database: none fails, each tree is
    migrated once."""
    url = new_database(postgres, tree=None)
    run_processes(migrate_worker, [(url, "state"), (url, "control")] * 2)
    engine = make_engine(url)
    try:
        with read(engine) as conn:
            for tree, head in (("state", "state_0004"), ("control", "control_0003")):
                versions = conn.execute(text(f"SELECT version_num FROM alembic_version_{tree}"))
                assert versions.scalars().all() == [head]
            assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
    finally:
        engine.dispose()


def test_four_workers_never_run_a_job_twice(postgres: PostgresCluster) -> None:
    run_jobs_in_processes(new_database(postgres), workers=4, jobs=300)


def hold_job(url: str, worker_id: str) -> None:
    """A worker that claims one job and heart-beats it until it is killed."""
    engine = make_engine(url)
    queue = JobQueue(engine, settings=JobSettings(lease_seconds=LEASE_SECONDS))
    job = poll(lambda: queue.claim(worker_id), 30, "a job to claim")
    while queue.heartbeat(job.id, worker_id, message="working"):
        time.sleep(LEASE_SECONDS / 10)


def test_a_killed_worker_s_job_is_claimed_again_and_completes_once(postgres: PostgresCluster) -> None:
    url = new_database(postgres)
    engine = make_engine(url)
    EXECUTIONS.create(engine)
    queue = JobQueue(engine, settings=JobSettings(lease_seconds=LEASE_SECONDS))
    job = queue.enqueue("slow", {"study": "1.2.3"})
    worker = multiprocessing.get_context(PROCESS_START).Process(target=hold_job, args=(url, "doomed"))
    worker.start()
    try:
        def claimed() -> Job | None:
            seen = queue.get(job.id)
            return seen if seen.lease_owner == "doomed" else None

        held = poll(claimed, 30, "the claim")
        assert held.lease_expires_at is not None
        first_lease_end = held.lease_expires_at.timestamp()
        # Past the first lease's end the job is still held: the heartbeats extended it.
        poll(lambda: time.time() > first_lease_end + 0.2, 5, "the first lease to pass")
        assert queue.claim("rescuer") is None
        assert queue.get(job.id).progress_message == "working"
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        assert worker.exitcode == -signal.SIGKILL
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()
    assert queue.get(job.id).state is JobState.RUNNING  # as the dead worker left it

    again = poll(lambda: queue.claim("rescuer"), 10, "the lease to expire")
    assert (again.id, again.attempts, again.lease_expiries, again.lease_owner) == (job.id, 2, 1, "rescuer")
    with write(engine) as conn:
        conn.execute(EXECUTIONS.insert().values(job_id=again.id, worker="rescuer"))
    queue.succeed(again.id, "rescuer", {"done": True})

    assert queue.claim("rescuer") is None
    done = queue.get(job.id)
    assert (done.state, done.result, done.attempts) == (JobState.SUCCEEDED, {"done": True}, 2)
    with read(engine) as conn:
        assert conn.execute(select(func.count()).select_from(EXECUTIONS)).scalar() == 1
    engine.dispose()


def test_outbox_appends_and_consumers_in_several_processes(postgres: PostgresCluster) -> None:
    """Concurrent appenders commit out of sequence order unless appends are serialised; a
    consumer would then skip a change for ever. Every change must be handled exactly once."""
    run_outbox_processes(new_database(postgres), appenders=4, consumers=2, per_appender=150)
