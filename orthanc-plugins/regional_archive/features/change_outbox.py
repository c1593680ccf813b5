"""Change outbox: every Orthanc change event of interest becomes one row of the tenant's outbox.

Orthanc's change callback runs on the Python plugin's event thread. This handler does one thing
there: an ``INSERT`` into the state database (``archive_state.outbox.Outbox.append``). No SDK
call, no network beyond the database, no decision: consumers in the services (the worker) read
the outbox with a durable cursor and do the work, so a slow consumer never holds Orthanc up and
an event survives any process restart once its row is committed.

A database error is retried a few times with a short, bounded back-off (a locked SQLite file, a
PostgreSQL fail-over); if it still fails the event is logged at ERROR with its three fields, so
it is never lost silently and can be replayed from Orthanc's own ``/changes`` log.

What is recorded are the lifecycle events a consumer acts on, at most a few per series:
new, stable and deleted patients, studies and series, completed series, updated attachments and
metadata. ``NewInstance`` (one per image, at the ingest rate) is left out: no consumer needs it —
what happens per instance is read from Orthanc once its series is stable — and writing it cost
small-image ingest dearly on 2 cores (benchmark 20261202-070001: a 1000-slice series took 16.8 s
on ours against 3.7 s on vanilla Orthanc, with the plugin's event thread half busy, 90 % of that
in the append). ``NewChildInstance`` (sent for each ancestor of every new instance) and the
server-wide changes (start/stop, peers, modalities, jobs) are not resource events and stay out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..contributions import Contribution, HealthCheck
from ..events import ChangeEvent, ChangeType

log = logging.getLogger(__name__)

NAME = "change-outbox"

#: What the outbox records (``OrthancPluginChangeType``).
OUTBOX_CHANGES: frozenset[ChangeType] = frozenset({
    ChangeType.NEW_PATIENT,
    ChangeType.NEW_STUDY,
    ChangeType.NEW_SERIES,
    ChangeType.STABLE_PATIENT,
    ChangeType.STABLE_STUDY,
    ChangeType.STABLE_SERIES,
    ChangeType.COMPLETED_SERIES,
    ChangeType.DELETED,
    ChangeType.UPDATED_ATTACHMENT,
    ChangeType.UPDATED_METADATA,
})

#: Pauses between attempts: three attempts in all, at most 0.6 s of waiting on top of the
#: database's own busy timeout.
RETRY_DELAYS: tuple[float, ...] = (0.1, 0.5)


class OutboxWriter(Protocol):
    """``archive_state.outbox.Outbox``, as far as the plugin uses it."""

    def append(self, change_type: str, resource_type: str, resource_id: str) -> None: ...


def _transient(exc: Exception) -> bool:
    """A locked database or a dropped connection is worth another try; a bad statement is not."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


@dataclass(frozen=True)
class AppendChange:
    """The change handler: append, retry transient errors, log what could not be written."""

    outbox: OutboxWriter
    delays: Sequence[float] = RETRY_DELAYS
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, event: ChangeEvent) -> None:
        for attempt, delay in enumerate((*self.delays, None), start=1):
            try:
                self.outbox.append(event.change_type, event.resource_type, event.resource_id)
                return
            except Exception as exc:
                if delay is not None and _transient(exc):
                    log.warning("outbox append failed (attempt %d, retrying in %.1f s): %s",
                                attempt, delay, exc)
                    self.sleep(delay)
                    continue
                log.error("change event NOT recorded in the outbox after %d attempt(s): "
                          "change_type=%s resource_type=%s resource_id=%s: %s: %s",
                          attempt, event.change_type, event.resource_type, event.resource_id,
                          type(exc).__name__, exc)
                return


def outbox_table_problem(engine: Engine, table: str) -> str | None:
    """``None`` if the state database has the outbox table; else what to do about it."""
    try:
        if inspect(engine).has_table(table):
            return None
    except Exception as exc:
        safe = engine.url.render_as_string(hide_password=True)
        return f"cannot open the state database {safe}: {type(exc).__name__}: {exc}"
    safe = engine.url.render_as_string(hide_password=True)
    return (f"the state database {safe} has no {table!r} table: its migrations have not run "
            "(the launcher runs them before Orthanc starts: python -m archive_door run, "
            "or archive_state.db.migrate(url, 'state'))")


@dataclass(frozen=True)
class ChangeOutboxFeature:
    """Contributes :class:`AppendChange` for :data:`OUTBOX_CHANGES` and the table check."""

    outbox: OutboxWriter
    engine: Engine
    table: str = "outbox"
    name: str = NAME
    changes: frozenset[ChangeType] = field(default=OUTBOX_CHANGES)

    def contribute(self) -> Contribution:
        handler = AppendChange(self.outbox)
        check = HealthCheck(
            name="outbox-table",
            description="the tenant's state database has the outbox table (migrations ran)",
            probe=lambda: outbox_table_problem(self.engine, self.table),
        )
        return Contribution(
            on_change={change: (handler,) for change in sorted(self.changes)},
            health_checks=(check,),
        )
