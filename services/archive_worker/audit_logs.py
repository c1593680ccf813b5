"""What the jobs that fold a log into the audit trail share (``audit.door-log``,
``audit.dicom-log``): where the logs are, the ``every`` parameter that makes them periodic, and
the audit trail they write to.

A periodic run enqueues its successor at its end, for the next multiple of ``every`` seconds,
under the idempotency key ``<kind>:<every>:<slot>``: two workers scheduling the same slot make one
job, and a slot missed while no worker ran is not made up (the next run reads all that is new).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_config.settings import ArchiveSettings, control_database_url, state_database_url
from archive_state.db import make_engine
from archive_state.jobs import Job, JobQueue

from .context import JobContext, JobFailed

MIN_EVERY: Final = 10.0
MAX_EVERY: Final = 3600.0


def logs_folder(settings: ArchiveSettings, env: Mapping[str, str]) -> Path:
    """``$ARCHIVE_DATA/logs`` where the launcher runs the archive, else the state folder's."""
    data = env.get("ARCHIVE_DATA")
    return Path(data) / "logs" if data else Path(settings.state_directory) / "logs"


def params_problem(params: Mapping[str, Any], flags: tuple[str, ...] = ()) -> str | None:
    """None when ``params`` hold at most ``every`` (seconds) and the boolean ``flags``; else
    what is wrong (for the API's 422)."""
    allowed = ("every", *flags)
    unknown = set(params) - set(allowed)
    if unknown:
        return (f"unknown params: {', '.join(sorted(unknown))} "
                f"(only {' and '.join(repr(name) for name in allowed)})")
    every = params.get("every")
    if "every" in params and (isinstance(every, bool) or not isinstance(every, (int, float))
                              or not MIN_EVERY <= every <= MAX_EVERY):
        return f"'every' must be a number of seconds from {MIN_EVERY:g} to {MAX_EVERY:g}"
    for flag in flags:
        if flag in params and not isinstance(params[flag], bool):
            return f"'{flag}' must be true or false"
    return None


def settings_for(job: Job, context: JobContext,
                 check: Callable[[dict[str, Any]], str | None]) -> ArchiveSettings:
    """The archive's settings for a run of ``job``, whose params ``check`` accepts."""
    problem = check(job.params)
    if problem:
        raise JobFailed(f"bad params: {problem}")
    if context.settings is None:
        raise JobFailed("this worker was started without the archive's settings")
    return context.settings


def schedule(queue: JobQueue, kind: str, every: float, now: datetime | None = None) -> Job:
    """Enqueue the run of ``kind`` for the next multiple of ``every`` seconds (one per slot)."""
    moment = now or datetime.now(timezone.utc)
    slot = int(moment.timestamp() // every) + 1
    run_after = datetime.fromtimestamp(slot * every, timezone.utc)
    return queue.enqueue(kind, {"every": every}, idempotency_key=f"{kind}:{every:g}:{slot}",
                         run_after=run_after)


def schedule_next(job: Job, settings: ArchiveSettings) -> int | None:
    """The id of the next run when ``job`` is periodic, else None."""
    every = job.params.get("every")
    if every is None:
        return None
    engine = make_engine(state_database_url(settings))
    try:
        return schedule(JobQueue(engine, settings.tenant, settings.jobs), job.kind,
                        float(every)).id
    finally:
        engine.dispose()


@contextmanager
def audit_trail(settings: ArchiveSettings) -> Iterator[AuditLog]:
    """The audit trail of the archive's control database, for one run."""
    engine = make_engine(control_database_url(settings))
    try:
        yield AuditLog(engine, load_or_create_key(key_path(settings.state_directory)))
    finally:
        engine.dispose()
