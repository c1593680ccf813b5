"""The durable job queue: a table in the tenant's state database, claimed under a lease.

A job's life: ``queued`` → ``running`` (claimed by one worker, under a lease) → ``succeeded``,
``failed`` or ``cancelled``; a failed attempt that may be retried goes back to ``queued`` with a
later ``run_after``. Why we wrote it rather than use a library is in ``docs/decisions.md``
("Jobs and the database layer").

- **Claim.** One transaction picks the oldest claimable job and marks it running with
  ``lease_expires_at = now + LeaseSeconds``. On PostgreSQL the pick is ``SELECT … FOR UPDATE SKIP
  LOCKED``, so concurrent workers take different jobs without waiting for each other; on SQLite the
  ``BEGIN IMMEDIATE`` transaction (:func:`archive_state.db.write`) serialises claimers.
  Claimable: ``queued`` with ``run_after <= now``, or ``running`` with an expired lease (its
  worker crashed or hung): that attempt counts, and once ``attempts`` reaches ``max_attempts`` the
  job is failed with "lease expired N times" instead of being run again.
- **Lease.** The worker calls :meth:`JobQueue.heartbeat` well within ``LeaseSeconds``; it extends
  the lease, records progress, and answers False when the worker must stop: the lease was lost
  (another worker re-claimed the job) or a cancel was asked. :meth:`succeed` and :meth:`fail` from
  a worker that no longer holds the job raise :class:`LeaseLost`, so a late result never
  overwrites the new attempt's.
- **Back-off.** A retryable failure waits ``RetryDelaySeconds * 2**(attempt-1)``, at most
  ``RetryDelayMaxSeconds``.
- **Idempotency key.** Unique per tenant, for the job's whole life: enqueueing with a key that
  exists returns the existing job whatever its state (finished ones included; run it again with
  :meth:`retry`), and raises :class:`JobConflict` if the kind or params differ (a reused key is a
  caller's bug, not a new job).
- **Ids** are unique in a database; :meth:`get`, :meth:`cancel` and :meth:`retry` act on any job
  of the database, :meth:`enqueue`, :meth:`claim` and :meth:`counts` on the queue's tenant, and
  :meth:`list` on all tenants unless given one.
"""

from __future__ import annotations

import builtins
import enum
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from archive_config.settings import JobSettings

from ._sql import upsert_insert
from .clock import Clock, utc_now
from .db import read, write
from .errors import JobConflict, JobNotFound, LeaseLost
from .models import JobRow

__all__ = ["Job", "JobConflict", "JobNotFound", "JobQueue", "JobState", "LeaseLost", "backoff_seconds"]

logger = logging.getLogger(__name__)

_jobs = cast(Table, JobRow.__table__)
_c = _jobs.c
# A claim gives up more than this many crashed-out jobs in one go, then looks again next poll.
_MAX_GIVE_UPS_PER_CLAIM = 100


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Job:
    """A snapshot of one job, detached from the database (never an ORM object)."""

    id: int
    tenant: str
    kind: str
    params: dict[str, Any]
    idempotency_key: str | None
    state: JobState
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    lease_expiries: int
    cancel_requested: bool
    progress_done: int | None
    progress_total: int | None
    progress_message: str | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def backoff_seconds(settings: JobSettings, attempt: int) -> float:
    """Delay before the attempt after failed attempt number ``attempt`` (1 = the first)."""
    exponent = max(attempt - 1, 0)
    if exponent > 60:  # 2**60 seconds is past any cap; avoid float overflow on absurd counts
        return settings.retry_delay_max_seconds
    return float(min(settings.retry_delay_seconds * 2**exponent, settings.retry_delay_max_seconds))


def _job(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        tenant=m["tenant"],
        kind=m["kind"],
        params=m["params"],
        idempotency_key=m["idempotency_key"],
        state=JobState(m["state"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        run_after=m["run_after"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        lease_expiries=m["lease_expiries"],
        cancel_requested=bool(m["cancel_requested"]),
        progress_done=m["progress_done"],
        progress_total=m["progress_total"],
        progress_message=m["progress_message"],
        last_error=m["last_error"],
        result=m["result"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
    )


def _normalised(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as it will read back from the JSON column; refuses what JSON cannot hold."""
    try:
        value = json.loads(json.dumps(params, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job params must be JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("job params must be a JSON object")
    return value


_RELEASE_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


class JobQueue:
    """The job queue of one tenant in one state database (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        tenant: str = "default",
        settings: JobSettings | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self.tenant = tenant
        self.settings = settings or JobSettings()
        self._clock = clock

    # -- producers ---------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        run_after: datetime | None = None,
    ) -> Job:
        """Add a job, or return the one already enqueued under ``idempotency_key``."""
        if not kind:
            raise ValueError("a job needs a kind")
        if idempotency_key == "":
            raise ValueError("an idempotency key must not be empty (use None for no key)")
        if run_after is not None and run_after.tzinfo is None:
            raise ValueError("run_after must be an aware datetime (UTC)")
        attempts_allowed = self.settings.max_attempts if max_attempts is None else max_attempts
        if attempts_allowed < 1:
            raise ValueError("max_attempts must be at least 1")
        clean = _normalised(params)
        now = self._clock()
        values = {
            "tenant": self.tenant,
            "kind": kind,
            "params": clean,
            "idempotency_key": idempotency_key,
            "state": JobState.QUEUED.value,
            "attempts": 0,
            "max_attempts": attempts_allowed,
            "run_after": run_after or now,
            "lease_owner": None,
            "lease_expires_at": None,
            "lease_expiries": 0,
            "cancel_requested": False,
            "created_at": now,
            "updated_at": now,
        }
        with write(self._engine) as conn:
            stmt = upsert_insert(conn, _jobs).values(**values)
            if idempotency_key is not None:
                stmt = stmt.on_conflict_do_nothing(index_elements=["tenant", "idempotency_key"])
            row = conn.execute(stmt.returning(*_c)).first()
            if row is not None:
                job = _job(row)
                logger.info("job %s enqueued: %s", job.id, kind)
                return job
            existing = _job(
                conn.execute(
                    select(_jobs).where(
                        _c.tenant == self.tenant, _c.idempotency_key == idempotency_key
                    )
                ).one()
            )
        if existing.kind != kind or existing.params != clean:
            raise JobConflict(
                f"idempotency key {idempotency_key!r} belongs to job {existing.id} "
                f"({existing.kind}) with other params"
            )
        return existing

    # -- workers -----------------------------------------------------------------------------

    def claim(self, worker_id: str, kinds: Collection[str] | None = None) -> Job | None:
        """Take the oldest claimable job of ``kinds`` (all kinds when None) under a lease of
        ``LeaseSeconds``; None when there is nothing to do."""
        if kinds is not None and not kinds:
            return None
        now = self._clock()
        claimable = and_(
            _c.tenant == self.tenant,
            or_(
                and_(_c.state == JobState.QUEUED.value, _c.run_after <= now),
                and_(_c.state == JobState.RUNNING.value, _c.lease_expires_at <= now),
            ),
        )
        if kinds is not None:
            claimable = and_(claimable, _c.kind.in_(sorted(kinds)))
        pick = (
            select(_jobs)
            .where(claimable)
            .order_by(_c.run_after, _c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        # Idle workers poll often: look without the write lock first, so that on SQLite an
        # empty poll never makes Orthanc's outbox appends wait.
        with read(self._engine) as conn:
            if conn.execute(select(_c.id).where(claimable).limit(1)).first() is None:
                return None
        with write(self._engine) as conn:
            for _ in range(_MAX_GIVE_UPS_PER_CLAIM):
                row = conn.execute(pick).first()
                if row is None:
                    return None
                current = _job(row)
                values: dict[str, Any] = {}
                if current.state is JobState.RUNNING:
                    if self._expire(conn, current, now):
                        continue  # given up or cancelled; look for the next one
                    values["lease_expiries"] = current.lease_expiries + 1
                values.update(
                    state=JobState.RUNNING.value,
                    attempts=current.attempts + 1,
                    lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                    started_at=now,
                    updated_at=now,
                )
                claimed = _job(
                    conn.execute(
                        update(_jobs).where(_c.id == current.id).values(**values).returning(*_c)
                    ).one()
                )
                logger.info(
                    "job %s (%s) claimed by %s, attempt %s of %s",
                    claimed.id, claimed.kind, worker_id, claimed.attempts, claimed.max_attempts,
                )
                return claimed
        return None

    def _expire(self, conn: Connection, job: Job, now: datetime) -> bool:
        """The lease of running ``job`` expired: its worker died or hung. Finish the job if it may
        not run again (True); otherwise leave it to be claimed (False)."""
        expiries = job.lease_expiries + 1
        logger.warning(
            "job %s: lease of %s expired (attempt %s of %s)",
            job.id, job.lease_owner, job.attempts, job.max_attempts,
        )
        if job.cancel_requested:
            state, error = JobState.CANCELLED, f"cancelled; the lease of {job.lease_owner} expired"
        elif job.attempts >= job.max_attempts:
            state, error = JobState.FAILED, f"lease expired {expiries} times"
        else:
            return False
        conn.execute(
            update(_jobs)
            .where(_c.id == job.id)
            .values(
                state=state.value,
                lease_expiries=expiries,
                last_error=error,
                finished_at=now,
                updated_at=now,
                **_RELEASE_LEASE,
            )
        )
        logger.warning("job %s %s: %s", job.id, state.value, error)
        return True

    def heartbeat(
        self,
        job_id: int,
        worker_id: str,
        *,
        done: int | None = None,
        total: int | None = None,
        message: str | None = None,
    ) -> bool:
        """Extend the lease and record progress. False: stop working on this job, because the
        lease was lost or a cancel was asked (then report it with :meth:`fail`)."""
        now = self._clock()
        values: dict[str, Any] = {
            "lease_expires_at": now + timedelta(seconds=self.settings.lease_seconds),
            "updated_at": now,
        }
        if done is not None:
            values["progress_done"] = done
        if total is not None:
            values["progress_total"] = total
        if message is not None:
            values["progress_message"] = message
        with write(self._engine) as conn:
            row = conn.execute(
                update(_jobs)
                .where(
                    _c.id == job_id,
                    _c.state == JobState.RUNNING.value,
                    _c.lease_owner == worker_id,
                )
                .values(**values)
                .returning(_c.cancel_requested)
            ).first()
            if row is None:
                self._row(conn, job_id)  # raises JobNotFound if there is no such job
                logger.warning("job %s: %s no longer holds it", job_id, worker_id)
                return False
        return not row.cancel_requested

    def succeed(self, job_id: int, worker_id: str, result: dict[str, Any] | None = None) -> None:
        """Record the job as done with ``result``. Raises :class:`LeaseLost` if ``worker_id``
        no longer holds it."""
        clean = None if result is None else _normalised(result)
        now = self._clock()
        with write(self._engine) as conn:
            held = self._held(conn, job_id, worker_id)
            conn.execute(
                update(_jobs)
                .where(_c.id == held.id)
                .values(
                    state=JobState.SUCCEEDED.value,
                    result=clean,
                    finished_at=now,
                    updated_at=now,
                    **_RELEASE_LEASE,
                )
            )
        logger.info("job %s succeeded (attempt %s)", job_id, held.attempts)

    def fail(self, job_id: int, worker_id: str, error: str, *, retryable: bool = True) -> Job:
        """Record a failed attempt: back to ``queued`` after the back-off while attempts remain
        and ``retryable``; otherwise ``failed`` with ``error`` as the reason. A job whose cancel
        was asked becomes ``cancelled`` instead (how a worker acknowledges a cancel)."""
        now = self._clock()
        with write(self._engine) as conn:
            held = self._held(conn, job_id, worker_id)
            values: dict[str, Any] = {"last_error": error, "updated_at": now, **_RELEASE_LEASE}
            if held.cancel_requested:
                values.update(state=JobState.CANCELLED.value, finished_at=now)
            elif retryable and held.attempts < held.max_attempts:
                delay = backoff_seconds(self.settings, held.attempts)
                values.update(state=JobState.QUEUED.value, run_after=now + timedelta(seconds=delay))
            else:
                values.update(state=JobState.FAILED.value, finished_at=now)
            job = _job(
                conn.execute(
                    update(_jobs).where(_c.id == job_id).values(**values).returning(*_c)
                ).one()
            )
        logger.log(
            logging.INFO if job.state is JobState.QUEUED else logging.WARNING,
            "job %s attempt %s failed (%s), now %s: %s",
            job_id, held.attempts, "retryable" if retryable else "final", job.state.value, error,
        )
        return job

    # -- retention ---------------------------------------------------------------------------

    def prune(self, older_than: timedelta, *, batch: int = 1000) -> int:
        """Delete this tenant's succeeded and cancelled jobs that ended before ``now -
        older_than``; failed ones stay until an operator retries or cancels them. At most
        ``batch`` rows per transaction, so a long backlog never holds the database for long.
        Returns how many were deleted. Their idempotency keys become free again."""
        cutoff = self._clock() - older_than
        ended = and_(_c.tenant == self.tenant,
                     _c.state.in_((JobState.SUCCEEDED.value, JobState.CANCELLED.value)),
                     _c.finished_at < cutoff)
        deleted = 0
        while True:
            with write(self._engine) as conn:
                ids: list[int] = list(conn.execute(
                    select(_c.id).where(ended).order_by(_c.id).limit(batch)).scalars())
                if ids:
                    conn.execute(_jobs.delete().where(_c.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < batch:
                return deleted

    # -- operators ---------------------------------------------------------------------------

    def cancel(self, job_id: int) -> Job:
        """Cancel a queued job at once; ask a running one's worker to stop (its next heartbeat
        answers False, then it reports with :meth:`fail` and the job becomes ``cancelled``).
        Cancelling a cancelled job changes nothing; a succeeded or failed one is a conflict."""
        now = self._clock()
        with write(self._engine) as conn:
            job = self._row(conn, job_id, lock=True)
            if job.state is JobState.QUEUED:
                values: dict[str, Any] = {
                    "state": JobState.CANCELLED.value,
                    "finished_at": now,
                    "updated_at": now,
                }
            elif job.state is JobState.RUNNING:
                if job.cancel_requested:
                    return job
                values = {"cancel_requested": True, "updated_at": now}
            elif job.state is JobState.CANCELLED:
                return job
            else:
                raise JobConflict(f"job {job_id} is {job.state.value}; only queued or running jobs can be cancelled")
            job = _job(
                conn.execute(
                    update(_jobs).where(_c.id == job_id).values(**values).returning(*_c)
                ).one()
            )
        logger.info("job %s: cancel asked, now %s", job_id, job.state.value)
        return job

    def retry(self, job_id: int) -> Job:
        """Queue a failed or cancelled job again, now, with its attempts reset. ``last_error``
        is kept until the next attempt reports."""
        now = self._clock()
        with write(self._engine) as conn:
            job = self._row(conn, job_id, lock=True)
            if job.state not in (JobState.FAILED, JobState.CANCELLED):
                raise JobConflict(f"job {job_id} is {job.state.value}; only failed or cancelled jobs can be retried")
            job = _job(
                conn.execute(
                    update(_jobs)
                    .where(_c.id == job_id)
                    .values(
                        state=JobState.QUEUED.value,
                        attempts=0,
                        lease_expiries=0,
                        cancel_requested=False,
                        run_after=now,
                        result=None,
                        progress_done=None,
                        progress_total=None,
                        progress_message=None,
                        started_at=None,
                        finished_at=None,
                        updated_at=now,
                        **_RELEASE_LEASE,
                    )
                    .returning(*_c)
                ).one()
            )
        logger.info("job %s queued again by retry", job_id)
        return job

    # -- readers -----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with read(self._engine) as conn:
            return self._row(conn, job_id)

    def list(
        self,
        *,
        state: JobState | str | None = None,
        kind: str | None = None,
        tenant: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[Job], int]:
        """One page of jobs, newest first, and how many match in all."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be from 1 to 1000")
        if offset < 0:
            raise ValueError("offset must not be negative")
        conditions = []
        if state is not None:
            conditions.append(_c.state == JobState(state).value)
        if kind is not None:
            conditions.append(_c.kind == kind)
        if tenant is not None:
            conditions.append(_c.tenant == tenant)
        with read(self._engine) as conn:
            total = conn.execute(select(func.count()).select_from(_jobs).where(*conditions)).scalar_one()
            rows = conn.execute(
                select(_jobs).where(*conditions).order_by(_c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [_job(r) for r in rows], int(total)

    def counts(self) -> dict[JobState, int]:
        """Jobs of this tenant per state; every state is present."""
        with read(self._engine) as conn:
            rows = conn.execute(
                select(_c.state, func.count())
                .where(_c.tenant == self.tenant)
                .group_by(_c.state)
            ).all()
        counts: dict[JobState, int] = {state: 0 for state in JobState}
        for row in rows:
            counts[JobState(str(row[0]))] = int(row[1])
        return counts

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _row(conn: Connection, job_id: int, *, lock: bool = False) -> Job:
        query = select(_jobs).where(_c.id == job_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    def _held(self, conn: Connection, job_id: int, worker_id: str) -> Job:
        job = self._row(conn, job_id, lock=True)
        if job.state is not JobState.RUNNING or job.lease_owner != worker_id:
            raise LeaseLost(
                f"job {job_id} is {job.state.value}"
                + (f" and held by {job.lease_owner}" if job.lease_owner else "")
                + f", not by {worker_id}"
            )
        return job
