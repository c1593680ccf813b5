"""The change outbox: what happened in the archive, in order, for consumers to act on.

Orthanc's plugin appends one row per change event (a stored instance, a stable study …) and does
nothing more (docs/architecture.md, decision 3); the workers consume it. Delivery is
**at least once**: a consumer's durable cursor moves past a batch only after its handler returned,
so a crash in the handler (or before the cursor is written) hands the same batch out again.
Handlers must therefore be idempotent, e.g. by enqueueing jobs with an idempotency key derived
from the change.

**One consumer at a time.** Each (tenant, consumer) cursor row carries a short lease (owner and
expiry), taken in a write transaction and held while the handler runs *outside* any transaction.
A second process calling :meth:`Outbox.consume` for the same consumer meanwhile gets 0 at once.
We do not hold the cursor's row lock across the handler: on SQLite that lock is the whole
database's write lock, which would stall Orthanc's appends and deadlock a handler that enqueues
jobs on another connection. A handler that outlives the lease may see its batch taken over and
delivered again; its own cursor update is then refused (still at least once).

**No gaps on PostgreSQL.** Sequence numbers are taken at insert but become visible at commit, so
a reader could see seq 11 committed before seq 10 and move its cursor past 10 for ever. Appends
therefore take a transaction-scoped advisory lock, which makes commit order equal seq order
(appends are one short insert each). SQLite serialises writers anyway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.engine import Engine

from ._sql import upsert_insert
from .clock import Clock, utc_now
from .db import is_postgresql, read, write
from .models import OutboxCursorRow, OutboxRow

logger = logging.getLogger(__name__)

_outbox = cast(Table, OutboxRow.__table__)
_cursors = cast(Table, OutboxCursorRow.__table__)
_APPEND_LOCK_KEY = 0x41524348_0000000A


@dataclass(frozen=True)
class Change:
    """One outbox entry. ``change_type`` and ``resource_type`` are Orthanc's names
    (``NewInstance``, ``StableStudy`` …; ``Instance``, ``Study`` …), ``resource_id`` its id."""

    seq: int
    tenant: str
    change_type: str
    resource_type: str
    resource_id: str
    created_at: datetime


class Outbox:
    """The outbox of one tenant in one state database."""

    def __init__(
        self,
        engine: Engine,
        tenant: str,
        *,
        lease_seconds: float = 60.0,
        clock: Clock = utc_now,
        owner: str | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be greater than 0")
        self._engine = engine
        self.tenant = tenant
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        # Who holds a cursor's lease: unique per Outbox object, so two objects in one process
        # exclude each other just as two processes do.
        self.owner = owner or f"outbox-{uuid.uuid4().hex}"

    def append(self, change_type: str, resource_type: str, resource_id: str) -> None:
        """Record one change, durably (committed when this returns)."""
        if not (change_type and resource_type and resource_id):
            raise ValueError("a change needs a change type, a resource type and a resource id")
        with write(self._engine) as conn:
            if is_postgresql(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK_KEY})
            conn.execute(
                _outbox.insert().values(
                    tenant=self.tenant,
                    change_type=change_type,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    created_at=self._clock(),
                )
            )

    def consume(
        self,
        consumer: str,
        handler: Callable[[Sequence[Change]], None],
        limit: int = 100,
    ) -> int:
        """Hand the next (up to ``limit``) changes after ``consumer``'s cursor to ``handler``,
        then move the cursor past them. Returns how many were handled and committed: 0 when there
        is nothing new or another process is consuming for ``consumer`` right now. If
        ``handler`` raises, the cursor stays and the exception propagates."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if self.pending(consumer) == 0:  # without the write lock: idle consumers poll often
            return 0
        now = self._clock()
        with write(self._engine) as conn:
            conn.execute(
                upsert_insert(conn, _cursors)
                .values(tenant=self.tenant, consumer=consumer, last_seq=0, updated_at=now)
                .on_conflict_do_nothing(index_elements=["tenant", "consumer"])
            )
            cursor = conn.execute(
                select(_cursors)
                .where(_cursors.c.tenant == self.tenant, _cursors.c.consumer == consumer)
                .with_for_update()
            ).one()
            if (
                cursor.owner not in (None, self.owner)
                and cursor.lease_expires_at is not None
                and cursor.lease_expires_at > now
            ):
                return 0
            rows = conn.execute(
                select(_outbox)
                .where(_outbox.c.tenant == self.tenant, _outbox.c.seq > cursor.last_seq)
                .order_by(_outbox.c.seq)
                .limit(limit)
            ).all()
            if not rows:
                return 0
            conn.execute(
                update(_cursors)
                .where(_cursors.c.tenant == self.tenant, _cursors.c.consumer == consumer)
                .values(owner=self.owner, lease_expires_at=now + self._lease, updated_at=now)
            )
        changes = [
            Change(
                seq=r.seq,
                tenant=r.tenant,
                change_type=r.change_type,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                created_at=r.created_at,
            )
            for r in rows
        ]
        try:
            handler(changes)
        except BaseException:
            self._release(consumer, advance_to=None)
            raise
        if not self._release(consumer, advance_to=changes[-1].seq):
            logger.warning(
                "outbox consumer %s lost its lease while handling seq %s-%s; they will be "
                "delivered again",
                consumer, changes[0].seq, changes[-1].seq,
            )
            return 0
        return len(changes)

    def _release(self, consumer: str, *, advance_to: int | None) -> bool:
        """Drop our lease on the cursor, moving it to ``advance_to``; False if we no longer
        held it."""
        values: dict[str, object] = {
            "owner": None,
            "lease_expires_at": None,
            "updated_at": self._clock(),
        }
        if advance_to is not None:
            values["last_seq"] = advance_to
        with write(self._engine) as conn:
            result = conn.execute(
                update(_cursors)
                .where(
                    _cursors.c.tenant == self.tenant,
                    _cursors.c.consumer == consumer,
                    _cursors.c.owner == self.owner,
                )
                .values(**values)
            )
            return result.rowcount == 1

    def pending(self, consumer: str) -> int:
        """How many changes ``consumer`` has not handled yet."""
        with read(self._engine) as conn:
            last = conn.execute(
                select(_cursors.c.last_seq).where(
                    _cursors.c.tenant == self.tenant, _cursors.c.consumer == consumer
                )
            ).scalar_one_or_none()
            count = conn.execute(
                select(func.count())
                .select_from(_outbox)
                .where(_outbox.c.tenant == self.tenant, _outbox.c.seq > (last or 0))
            ).scalar_one()
        return int(count)
