"""The worker loop: heartbeat, consume the outbox, claim and run jobs; stop cleanly on SIGTERM.

* Every ``PollSeconds`` a background thread records the worker's heartbeat in the control
  database (``ServiceRegistry``), so ``/api/health`` sees it alive even during a long job.
* Every :data:`QUARANTINE_SYNC_SECONDS` (between jobs) it imports the quarantine spool into the
  state database (:meth:`archive_state.quarantine.QuarantineIndex.sync`), so entries the gate
  wrote are listed even before anyone asks the API.
* Every ``Archive.CrashGuard.PollSeconds`` (between jobs) the crash guard reads what is new in
  the door's error log and enqueues a quarantine job for an instance that keeps killing Orthanc
  (:mod:`archive_worker.crash_guard`).
* Every :data:`PRUNE_SECONDS` (between jobs) it deletes the tenant's succeeded and cancelled jobs
  older than ``Archive.Jobs.KeepFinishedDays`` (:meth:`archive_state.jobs.JobQueue.prune`).
* Between jobs the worker consumes the outbox (one worker at a time holds the consumer's lease)
  and claims the oldest job of a kind it knows; with nothing to do it waits ``PollSeconds``.
* A job's own heartbeat is the handler's ``progress()`` call (at most one database write a
  second); when the queue answers False the worker stops the handler (cancel → the job becomes
  cancelled; lost lease → the worker drops the job, another has it).
* SIGTERM: the current handler stops at its next ``progress()`` and the job is handed back at
  once with ``fail(retryable=True)``: queued again after the first back-off delay
  (``RetryDelaySeconds``), for this or another worker. A handler that ends before it calls
  ``progress()`` again finishes normally. Then the worker exits 0. A worker killed outright
  (SIGKILL, a crash) stops heart-beating; once its lease (``LeaseSeconds``) expires the job is
  claimed again by any worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from archive_api.orthanc import OrthancUnreachable
from archive_config.settings import ArchiveSettings
from archive_state.errors import LeaseLost as QueueLeaseLost
from archive_state.jobs import Job, JobQueue
from archive_state.outbox import Outbox
from archive_state.quarantine import QuarantineIndex, report_text
from archive_state.services import ServiceRegistry

from . import changes
from .crash_guard import CrashGuard
from .context import (Handler, JobCancelled, JobContext, JobFailed, JobInterrupted, LeaseLost,
                      OrthancApi, WorkerStopping)

log = logging.getLogger(__name__)

#: Longest error text kept with a job.
MAX_ERROR = 2000
#: How often the worker imports the quarantine spool.
QUARANTINE_SYNC_SECONDS = 5.0
#: How often the worker deletes finished jobs past their retention.
PRUNE_SECONDS = 3600.0


@dataclass
class Worker:
    name: str
    settings: ArchiveSettings
    queue: JobQueue
    outbox: Outbox
    registry: ServiceRegistry
    orthanc: OrthancApi
    kinds: Mapping[str, Handler]
    version: str
    progress_interval: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    quarantine: QuarantineIndex | None = None
    _quarantine_synced: float = float("-inf")
    _pruned: float = float("-inf")
    crash_guard: CrashGuard | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _current: int | None = None

    def stop(self) -> None:
        """Ask the loop to end (signal handlers call this)."""
        self._stop.set()

    @property
    def lease_owner(self) -> str:
        """Who holds a claimed job: name, host and pid, unique when several machines share a
        PostgreSQL state database (each may run a ``worker-1``)."""
        return f"{self.name}@{socket.gethostname()}:{os.getpid()}"

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        beats = threading.Thread(target=self._beat_loop, name=f"{self.name}-heartbeat",
                                 daemon=True)
        beats.start()
        log.info("%s: running kinds %s", self.name, ", ".join(sorted(self.kinds)))
        try:
            while not self.stopping:
                if not self.step():
                    self._stop.wait(self.settings.jobs.poll_seconds)
        finally:
            self._stop.set()
            beats.join(timeout=5)
        log.info("%s: stopped", self.name)
        return 0

    def step(self) -> bool:
        """One round: consume changes, run one job. True when there was something to do."""
        busy = False
        self.sync_quarantine()
        self.guard_crashes()
        self.prune_jobs()
        try:
            context = changes.ChangeContext(self.queue, self.settings, log)
            busy = self.outbox.consume(
                changes.CONSUMER, lambda batch: changes.dispatch(batch, context)) > 0
        except Exception:
            log.exception("%s: consuming the outbox failed; the changes will come again",
                          self.name)
        if self.stopping:
            return busy
        try:
            job = self.queue.claim(self.lease_owner, kinds=list(self.kinds))
        except Exception:
            log.exception("%s: claiming a job failed", self.name)
            return busy
        if job is None:
            return busy
        self.run_job(job)
        return True

    def sync_quarantine(self) -> None:
        """Import the quarantine spool, at most every :data:`QUARANTINE_SYNC_SECONDS`."""
        now = self.monotonic()
        if self.quarantine is None or now - self._quarantine_synced < QUARANTINE_SYNC_SECONDS:
            return
        self._quarantine_synced = now
        try:
            report = self.quarantine.sync()
        except Exception:
            log.exception("%s: importing the quarantine spool failed", self.name)
            return
        if report.changed:
            log.info("%s: quarantine import %s", self.name, report_text(report))

    def prune_jobs(self) -> None:
        """Delete finished jobs past their retention, at most every :data:`PRUNE_SECONDS`."""
        now = self.monotonic()
        if now - self._pruned < PRUNE_SECONDS:
            return
        self._pruned = now
        try:
            deleted = self.queue.prune(timedelta(days=self.settings.jobs.keep_finished_days))
        except Exception:
            log.exception("%s: deleting old finished jobs failed; it tries again in an hour",
                          self.name)
            return
        if deleted:
            log.info("%s: deleted %d finished jobs older than %g days", self.name, deleted,
                     self.settings.jobs.keep_finished_days)

    def guard_crashes(self) -> None:
        """Let the crash guard look at the door's log (it decides how often)."""
        if self.crash_guard is None:
            return
        try:
            self.crash_guard.poll()
        except Exception:
            log.exception("%s: the crash guard's scan of the door log failed; it tries again",
                          self.name)

    def _beat_loop(self) -> None:
        while True:
            self.beat()
            if self._stop.wait(self.settings.jobs.poll_seconds):
                return

    def beat(self) -> None:
        detail: dict[str, Any] = {"job": self._current, "kinds": sorted(self.kinds)}
        try:
            self.registry.beat(self.name, self.settings.tenant, os.getpid(), self.version, detail)
        except Exception:
            log.exception("%s: heartbeat failed", self.name)

    # -- one job ---------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        handler = self.kinds[job.kind]
        self._current = job.id
        job_log = logging.getLogger(f"archive_worker.job.{job.kind}")
        log.info("%s: job %s (%s) attempt %s/%s", self.name, job.id, job.kind, job.attempts,
                 job.max_attempts)
        try:
            result = handler(job, JobContext(self.orthanc, self._progress(job), job_log,
                                             self.settings))
        except JobCancelled:
            self._fail(job, "cancelled on request", retryable=False)
        except LeaseLost:
            log.warning("%s: job %s was taken over; dropping it", self.name, job.id)
        except WorkerStopping:
            self._fail(job, "worker stopped (SIGTERM) before the job ended", retryable=True)
        except JobFailed as exc:
            self._fail(job, _with_result(str(exc), exc.result), retryable=False)
        except OrthancUnreachable as exc:
            self._fail(job, f"Orthanc not reachable: {exc}", retryable=True)
        except Exception as exc:
            log.exception("%s: job %s raised", self.name, job.id)
            self._fail(job, f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            try:
                self.queue.succeed(job.id, self.lease_owner, result)
            except QueueLeaseLost:
                log.warning("%s: job %s finished after its lease was lost; result dropped",
                            self.name, job.id)
        finally:
            self._current = None

    def _fail(self, job: Job, error: str, *, retryable: bool) -> None:
        try:
            self.queue.fail(job.id, self.lease_owner, error[:MAX_ERROR], retryable=retryable)
        except QueueLeaseLost:
            log.warning("%s: job %s: lease lost before reporting %r", self.name, job.id, error)

    def _progress(self, job: Job) -> Callable[[int, int | None, str | None], None]:
        last = [float("-inf")]

        def progress(done: int, total: int | None = None, message: str | None = None) -> None:
            if self.stopping:
                raise WorkerStopping(f"job {job.id}: worker stopping")
            now = self.monotonic()
            if now - last[0] < self.progress_interval and done != total:
                return
            last[0] = now
            if self.queue.heartbeat(job.id, self.lease_owner, done=done, total=total, message=message):
                return
            current = self.queue.get(job.id)
            if current.cancel_requested and current.lease_owner == self.lease_owner:
                raise JobCancelled(f"job {job.id}: cancel asked")
            raise LeaseLost(f"job {job.id}: lease lost to {current.lease_owner}")

        return progress


def _with_result(message: str, result: Mapping[str, Any] | None) -> str:
    if not result:
        return message
    failed = result.get("failed")
    return f"{message}: {failed}" if failed else message


__all__ = ["Worker", "JobInterrupted"]
