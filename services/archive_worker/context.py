"""What a job handler receives, and how it is told to stop.

A handler is a plain function ``(job, context) -> result dict`` (one signature for every kind,
dispatched from :data:`archive_worker.kinds.KINDS`). It reports progress through
:meth:`JobContext.progress`, which is also the job's heartbeat: when the queue answers that the
lease is lost or a cancel was asked, or the worker is stopping, ``progress`` raises and the
handler's work stops where it stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from archive_config.settings import ArchiveSettings
from archive_state.jobs import Job


class OrthancApi(Protocol):
    """The part of :class:`archive_api.orthanc.SyncOrthanc` handlers use."""

    def get_json(self, path: str) -> Any: ...

    def post_json(self, path: str, body: Any = None) -> Any: ...

    def request(self, method: str, path: str, *, json_body: Any = None) -> httpx.Response: ...


class JobInterrupted(Exception):
    """The handler must stop now; the runner decides what becomes of the job."""


class JobCancelled(JobInterrupted):
    """An operator asked to cancel the job (``POST /api/jobs/{id}/cancel``)."""


class LeaseLost(JobInterrupted):
    """This worker no longer holds the job: its lease expired and another worker took it."""


class WorkerStopping(JobInterrupted):
    """The worker got SIGTERM: it hands the job back for another attempt."""


class JobFailed(Exception):
    """A failure the handler knows to be final (bad params, a checksum mismatch): no retry.

    ``result`` is kept with the job as its result, so the operator sees what was found.
    """

    def __init__(self, message: str, result: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = dict(result) if result is not None else None


#: ``(done, total, message) -> None``: heartbeat and progress; raises :class:`JobInterrupted`.
Progress = Callable[[int, int | None, str | None], None]


@dataclass(frozen=True)
class JobContext:
    orthanc: OrthancApi
    progress: Progress
    log: logging.Logger
    #: The archive's settings (state directory, tenant), for handlers that write beside Orthanc.
    settings: ArchiveSettings | None = None


Handler = Callable[[Job, JobContext], dict[str, Any]]
