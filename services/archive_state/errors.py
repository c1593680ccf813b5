"""The exception tree of :mod:`archive_state`.

Each class carries the HTTP status the API answers with, so the one ``/api`` error translator
does not need to know this package's classes one by one.
"""

from __future__ import annotations


class StateError(Exception):
    """Base of every error this package raises on purpose."""

    status = 500


class MigrationError(StateError):
    """A database could not be brought to the schema this code needs."""


class JobNotFound(StateError):
    """No job has the given id."""

    status = 404

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class JobConflict(StateError):
    """The job is in a state that does not allow the operation (retry of a running job, …)."""

    status = 409


class LeaseLost(JobConflict):
    """A worker reported on a job it no longer holds: its lease expired and another worker (or
    a cancel) took the job over. The worker must drop its result."""


class QuarantineNotFound(StateError):
    """No quarantine entry has the given id (in this tenant)."""

    status = 404

    def __init__(self, entry: str) -> None:
        super().__init__(f"quarantine entry {entry} does not exist")
        self.entry = entry


class QuarantineConflict(StateError):
    """The entry's status does not allow the operation (re-ingest of a discarded entry, …)."""

    status = 409
