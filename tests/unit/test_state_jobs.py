"""The job queue on real SQLite files, with a manual clock for leases and back-off.

:class:`QueueContract` holds the tests; ``tests/integration/test_state_postgres.py`` runs the same
class on PostgreSQL. A subclass provides the ``state_url`` fixture: an empty, migrated database.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive_config.settings import JobSettings
from archive_state.db import make_engine, migrate
from archive_state.jobs import (
    Job,
    JobConflict,
    JobNotFound,
    JobQueue,
    JobState,
    LeaseLost,
    backoff_seconds,
)

SETTINGS = JobSettings(
    lease_seconds=30.0, max_attempts=3, retry_delay_seconds=5.0, retry_delay_max_seconds=12.0
)
T0 = datetime(2026, 1, 5, 8, 0, 0, tzinfo=timezone.utc)


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class QueueContract:
    """Queue behaviour every database must show."""

    @pytest.fixture
    def engine(self, state_url: str) -> Iterator[Engine]:
        engine = make_engine(state_url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def queue(self, engine: Engine, clock: ManualClock) -> JobQueue:
        return JobQueue(engine, tenant="default", settings=SETTINGS, clock=clock)

    # -- enqueue and idempotency -------------------------------------------------------------

    def test_enqueue_records_a_queued_job(self, queue: JobQueue) -> None:
        job = queue.enqueue("verify-study", {"study": "abc", "n": [1, 2]})
        assert job.state is JobState.QUEUED
        assert (job.tenant, job.kind, job.params) == ("default", "verify-study", {"study": "abc", "n": [1, 2]})
        assert (job.attempts, job.max_attempts, job.lease_owner) == (0, 3, None)
        assert job.run_after == job.created_at == T0
        assert job.created_at.tzinfo is not None
        assert queue.get(job.id) == job

    def test_params_must_be_json(self, queue: JobQueue) -> None:
        with pytest.raises(ValueError, match="JSON"):
            queue.enqueue("k", {"when": T0})

    def test_times_must_be_aware(self, queue: JobQueue) -> None:
        with pytest.raises(ValueError, match="aware"):
            queue.enqueue("k", {}, run_after=datetime(2026, 1, 5, 9, 0))
        with pytest.raises(ValueError, match="max_attempts"):
            queue.enqueue("k", {}, max_attempts=0)

    def test_same_idempotency_key_returns_the_existing_job(self, queue: JobQueue) -> None:
        first = queue.enqueue("verify-study", {"study": "abc"}, idempotency_key="verify:abc")
        again = queue.enqueue("verify-study", {"study": "abc"}, idempotency_key="verify:abc")
        other = queue.enqueue("verify-study", {"study": "abc"}, idempotency_key="verify:def")
        assert again == first
        assert other.id != first.id
        assert queue.list()[1] == 2

    def test_idempotency_key_holds_after_the_job_finished(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {}, idempotency_key="once")
        claimed = queue.claim("w1")
        assert claimed is not None
        queue.succeed(job.id, "w1", {"ok": True})
        again = queue.enqueue("k", {}, idempotency_key="once")
        assert (again.id, again.state, again.result) == (job.id, JobState.SUCCEEDED, {"ok": True})

    def test_reused_key_with_other_params_is_a_conflict(self, queue: JobQueue) -> None:
        queue.enqueue("k", {"a": 1}, idempotency_key="key")
        with pytest.raises(JobConflict, match="other params"):
            queue.enqueue("k", {"a": 2}, idempotency_key="key")
        with pytest.raises(JobConflict):
            queue.enqueue("other-kind", {"a": 1}, idempotency_key="key")

    def test_idempotency_keys_are_per_tenant(self, engine: Engine, clock: ManualClock) -> None:
        a = JobQueue(engine, tenant="a", settings=SETTINGS, clock=clock)
        b = JobQueue(engine, tenant="b", settings=SETTINGS, clock=clock)
        assert a.enqueue("k", {}, idempotency_key="x").id != b.enqueue("k", {}, idempotency_key="x").id

    # -- claim -------------------------------------------------------------------------------

    def test_claim_takes_the_oldest_due_job(self, queue: JobQueue, clock: ManualClock) -> None:
        later = queue.enqueue("k", {"n": "later"}, run_after=T0 + timedelta(seconds=10))
        first = queue.enqueue("k", {"n": "first"})
        second = queue.enqueue("k", {"n": "second"})
        claimed = [queue.claim("w1"), queue.claim("w1")]
        assert [j.id if j else None for j in claimed] == [first.id, second.id]
        assert queue.claim("w1") is None  # `later` is not due yet
        clock.advance(10)
        job = queue.claim("w1")
        assert job is not None and job.id == later.id

    def test_claim_sets_the_lease(self, queue: JobQueue) -> None:
        queue.enqueue("k", {})
        job = queue.claim("w1")
        assert job is not None
        assert (job.state, job.attempts, job.lease_owner) == (JobState.RUNNING, 1, "w1")
        assert job.lease_expires_at == T0 + timedelta(seconds=SETTINGS.lease_seconds)
        assert job.started_at == T0

    def test_claim_filters_by_kind(self, queue: JobQueue) -> None:
        queue.enqueue("a", {})
        b = queue.enqueue("b", {})
        assert queue.claim("w1", kinds=[]) is None
        job = queue.claim("w1", kinds={"b", "c"})
        assert job is not None and job.id == b.id
        assert queue.claim("w1", kinds=["b"]) is None

    def test_claim_stays_in_its_tenant(self, engine: Engine, clock: ManualClock) -> None:
        JobQueue(engine, tenant="other", settings=SETTINGS, clock=clock).enqueue("k", {})
        assert JobQueue(engine, tenant="default", settings=SETTINGS, clock=clock).claim("w1") is None

    # -- leases and heartbeats ---------------------------------------------------------------

    def test_expired_lease_is_claimed_again(self, queue: JobQueue, clock: ManualClock) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        clock.advance(SETTINGS.lease_seconds - 1)
        assert queue.claim("w2") is None  # w1 still holds it
        clock.advance(1)
        again = queue.claim("w2")
        assert again is not None and again.id == job.id
        assert (again.attempts, again.lease_owner, again.lease_expiries) == (2, "w2", 1)
        # The first worker comes back: it must learn it lost the job and may not report on it.
        assert queue.heartbeat(job.id, "w1") is False
        with pytest.raises(LeaseLost):
            queue.succeed(job.id, "w1", {"late": True})
        with pytest.raises(LeaseLost):
            queue.fail(job.id, "w1", "late")
        queue.succeed(job.id, "w2", {"by": "w2"})
        assert queue.get(job.id).result == {"by": "w2"}

    def test_heartbeat_extends_the_lease_and_records_progress(
        self, queue: JobQueue, clock: ManualClock
    ) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        clock.advance(20)
        assert queue.heartbeat(job.id, "w1", done=3, total=10, message="3 of 10 series") is True
        clock.advance(20)  # 40 s after the claim, 20 s after the beat: still held
        assert queue.claim("w2") is None
        assert queue.heartbeat(job.id, "w1", done=4) is True
        seen = queue.get(job.id)
        assert (seen.progress_done, seen.progress_total, seen.progress_message) == (4, 10, "3 of 10 series")
        assert seen.lease_expires_at == clock.now + timedelta(seconds=SETTINGS.lease_seconds)

    def test_heartbeat_of_an_unknown_job(self, queue: JobQueue) -> None:
        with pytest.raises(JobNotFound):
            queue.heartbeat(12345, "w1")

    def test_expired_leases_give_up_into_failed(self, queue: JobQueue, clock: ManualClock) -> None:
        job = queue.enqueue("k", {}, max_attempts=2)
        for worker in ("w1", "w2"):
            assert queue.claim(worker) is not None
            clock.advance(SETTINGS.lease_seconds)
        assert queue.claim("w3") is None
        failed = queue.get(job.id)
        assert failed.state is JobState.FAILED
        assert failed.last_error == "lease expired 2 times"
        assert (failed.attempts, failed.lease_owner, failed.finished_at) == (2, None, clock.now)

    # -- failure, back-off, give-up ----------------------------------------------------------

    def test_back_off_doubles_up_to_the_cap(self) -> None:
        assert [backoff_seconds(SETTINGS, n) for n in (1, 2, 3, 4, 500)] == [5.0, 10.0, 12.0, 12.0, 12.0]

    def test_failed_attempts_are_retried_after_the_back_off(
        self, queue: JobQueue, clock: ManualClock
    ) -> None:
        job = queue.enqueue("k", {}, max_attempts=3)
        delays = []
        for attempt in (1, 2):
            claimed = queue.claim("w1")
            assert claimed is not None and claimed.attempts == attempt
            after = queue.fail(job.id, "w1", f"boom {attempt}")
            assert (after.state, after.last_error, after.lease_owner) == (JobState.QUEUED, f"boom {attempt}", None)
            delays.append((after.run_after - clock.now).total_seconds())
            clock.advance(delays[-1] - 1)
            assert queue.claim("w1") is None  # not before the back-off
            clock.advance(1)
        assert delays == [5.0, 10.0]
        assert queue.claim("w1") is not None
        final = queue.fail(job.id, "w1", "boom 3")
        assert (final.state, final.attempts, final.last_error) == (JobState.FAILED, 3, "boom 3")
        assert final.finished_at == clock.now
        assert queue.claim("w1") is None

    def test_non_retryable_failure_gives_up_at_once(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        failed = queue.fail(job.id, "w1", "study does not exist", retryable=False)
        assert (failed.state, failed.attempts, failed.last_error) == (JobState.FAILED, 1, "study does not exist")

    def test_succeed_records_the_result(self, queue: JobQueue, clock: ManualClock) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        clock.advance(2)
        queue.succeed(job.id, "w1", {"files": 3})
        done = queue.get(job.id)
        assert (done.state, done.result, done.lease_owner, done.finished_at) == (
            JobState.SUCCEEDED, {"files": 3}, None, T0 + timedelta(seconds=2)
        )
        assert done.finished
        with pytest.raises(LeaseLost):
            queue.succeed(job.id, "w1")

    # -- cancel and retry --------------------------------------------------------------------

    def test_cancel_a_queued_job(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        cancelled = queue.cancel(job.id)
        assert (cancelled.state, cancelled.finished_at) == (JobState.CANCELLED, T0)
        assert queue.claim("w1") is None
        assert queue.cancel(job.id) == cancelled  # cancelling again changes nothing

    def test_cancel_a_running_job(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        asked = queue.cancel(job.id)
        assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
        assert queue.heartbeat(job.id, "w1", done=1) is False  # the worker is told to stop
        stopped = queue.fail(job.id, "w1", "stopped on request")
        assert (stopped.state, stopped.last_error) == (JobState.CANCELLED, "stopped on request")

    def test_cancel_of_a_running_job_whose_worker_died(self, queue: JobQueue, clock: ManualClock) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        queue.cancel(job.id)
        clock.advance(SETTINGS.lease_seconds)
        assert queue.claim("w2") is None  # not run again: it becomes cancelled
        assert queue.get(job.id).state is JobState.CANCELLED

    def test_cancel_a_finished_job_is_a_conflict(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        assert queue.claim("w1") is not None
        queue.succeed(job.id, "w1")
        with pytest.raises(JobConflict):
            queue.cancel(job.id)
        with pytest.raises(JobNotFound):
            queue.cancel(999_999)

    def test_retry_queues_a_failed_job_with_attempts_reset(self, queue: JobQueue, clock: ManualClock) -> None:
        job = queue.enqueue("k", {}, max_attempts=1)
        assert queue.claim("w1") is not None
        queue.heartbeat(job.id, "w1", done=1, total=2)
        assert queue.fail(job.id, "w1", "disk full").state is JobState.FAILED
        clock.advance(100)
        again = queue.retry(job.id)
        assert (again.state, again.attempts, again.run_after, again.finished_at) == (
            JobState.QUEUED, 0, clock.now, None
        )
        assert (again.progress_done, again.last_error) == (None, "disk full")
        claimed = queue.claim("w1")
        assert claimed is not None and claimed.attempts == 1

    def test_retry_a_cancelled_job(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        queue.cancel(job.id)
        assert queue.retry(job.id).state is JobState.QUEUED

    def test_retry_of_a_queued_running_or_succeeded_job_is_a_conflict(self, queue: JobQueue) -> None:
        job = queue.enqueue("k", {})
        with pytest.raises(JobConflict, match="queued"):
            queue.retry(job.id)
        assert queue.claim("w1") is not None
        with pytest.raises(JobConflict, match="running"):
            queue.retry(job.id)
        queue.succeed(job.id, "w1")
        with pytest.raises(JobConflict, match="succeeded"):
            queue.retry(job.id)
        with pytest.raises(JobNotFound):
            queue.retry(999_999)

    # -- retention ---------------------------------------------------------------------------

    def test_prune_deletes_only_old_succeeded_and_cancelled_jobs(
            self, engine: Engine, queue: JobQueue, clock: ManualClock) -> None:
        def finished(key: str, fail: bool = False) -> Job:
            job = queue.enqueue("k", {}, idempotency_key=key, max_attempts=1)
            assert queue.claim("w1") is not None
            if fail:
                return queue.fail(job.id, "w1", "broken")
            queue.succeed(job.id, "w1")
            return queue.get(job.id)

        old_ok, old_failed = finished("old-ok"), finished("old-failed", fail=True)
        old_cancelled = queue.cancel(queue.enqueue("k", {}, idempotency_key="old-cancelled").id)
        elsewhere = JobQueue(engine, tenant="zhen", settings=SETTINGS, clock=clock)
        foreign = elsewhere.enqueue("k", {})
        assert elsewhere.claim("w9") is not None
        elsewhere.succeed(foreign.id, "w9")
        clock.advance(3 * 86400)
        recent_ok = finished("recent-ok")
        still_queued = queue.enqueue("k", {}, idempotency_key="waiting")
        assert queue.prune(timedelta(days=2), batch=1) == 2
        with pytest.raises(JobNotFound):
            queue.get(old_ok.id)
        with pytest.raises(JobNotFound):
            queue.get(old_cancelled.id)
        kept = {queue.get(job.id).state for job in (old_failed, recent_ok, still_queued, foreign)}
        assert kept == {JobState.FAILED, JobState.SUCCEEDED, JobState.QUEUED}
        assert queue.prune(timedelta(days=2)) == 0
        # The key is free again: the same work may be asked for anew.
        assert queue.enqueue("k", {}, idempotency_key="old-ok").state is JobState.QUEUED

    # -- reading -----------------------------------------------------------------------------

    def test_list_filters_and_pages(self, engine: Engine, queue: JobQueue, clock: ManualClock) -> None:
        other = JobQueue(engine, tenant="clinic-1", settings=SETTINGS, clock=clock)
        made: list[Job] = []
        for n in range(7):
            made.append(queue.enqueue("a" if n % 2 == 0 else "b", {"n": n}))
            clock.advance(1)
        made.append(other.enqueue("a", {"n": 99}))
        running = queue.claim("w1")
        assert running is not None and running.id == made[0].id

        page, total = queue.list(limit=3)
        assert total == 8
        assert [j.id for j in page] == [made[7].id, made[6].id, made[5].id]  # newest first
        page2, _ = queue.list(limit=3, offset=3)
        assert [j.id for j in page2] == [made[4].id, made[3].id, made[2].id]
        kinds_a, total_a = queue.list(kind="a", tenant="default")
        assert total_a == 4 and {j.params["n"] for j in kinds_a} == {0, 2, 4, 6}
        clinic, total_clinic = queue.list(tenant="clinic-1")
        assert total_clinic == 1 and clinic[0].tenant == "clinic-1"
        only_running, total_running = queue.list(state="running")
        assert total_running == 1 and only_running[0].id == running.id
        assert queue.list(state=JobState.QUEUED)[1] == 7
        assert queue.list(offset=100) == ([], 8)
        with pytest.raises(ValueError):
            queue.list(limit=0)
        with pytest.raises(ValueError):
            queue.list(state="bogus")

    def test_counts_cover_every_state(self, engine: Engine, queue: JobQueue, clock: ManualClock) -> None:
        JobQueue(engine, tenant="other", settings=SETTINGS, clock=clock).enqueue("k", {})
        assert queue.counts() == dict.fromkeys(JobState, 0)
        ids = [queue.enqueue("k", {"n": n}).id for n in range(5)]
        for _ in range(3):
            assert queue.claim("w1") is not None
        queue.succeed(ids[0], "w1")
        queue.fail(ids[1], "w1", "x", retryable=False)
        queue.cancel(ids[3])
        assert queue.counts() == {
            JobState.QUEUED: 1,
            JobState.RUNNING: 1,
            JobState.SUCCEEDED: 1,
            JobState.FAILED: 1,
            JobState.CANCELLED: 1,
        }

    def test_get_of_an_unknown_job(self, queue: JobQueue) -> None:
        with pytest.raises(JobNotFound) as caught:
            queue.get(424242)
        assert caught.value.status == 404


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated state database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("state-template") / "state.sqlite"
    migrate(f"sqlite:///{path}", "state")  # migrate() disposes its engine: the WAL is merged
    return path


def sqlite_state_url(template: Path, folder: Path) -> str:
    path = folder / "state.sqlite"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


class TestQueueSQLite(QueueContract):
    @pytest.fixture
    def state_url(self, migrated_sqlite: Path, tmp_path: Path) -> str:
        return sqlite_state_url(migrated_sqlite, tmp_path)
