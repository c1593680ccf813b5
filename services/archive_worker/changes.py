"""The change outbox's consumer: change type → handlers, one signature for all.

The plugin inside Orthanc only records changes in the outbox, named as Orthanc's REST API names
them in ``GET /changes`` (``StableStudy``, resource type ``Study``); what follows from them
happens here, outside Orthanc's callback threads (slow work leaves Orthanc). A handler is
``(change, context) -> None`` and mostly enqueues a job; it must be idempotent, because a batch
whose handling fails is delivered again: jobs it enqueues carry an idempotency key made from the
change's sequence number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from archive_config.settings import ArchiveSettings
from archive_state.jobs import JobQueue
from archive_state.outbox import Change

from . import verify

#: The outbox consumer name every worker shares: one of them consumes at a time.
CONSUMER = "worker"


@dataclass(frozen=True)
class ChangeContext:
    queue: JobQueue
    settings: ArchiveSettings
    log: logging.Logger


ChangeHandler = Callable[[Change, ChangeContext], None]


def enqueue_verify(change: Change, context: ChangeContext) -> None:
    """A study became stable: check its files against their MD5.

    Only when ``Archive.Jobs.VerifyStableStudies`` is on.
    """
    if not context.settings.jobs.verify_stable_studies:
        return
    job = context.queue.enqueue(verify.KIND, {"study": change.resource_id},
                                idempotency_key=f"verify:{change.resource_id}:{change.seq}")
    context.log.info("stable study %s: verify job %s", change.resource_id, job.id)


HANDLERS: Mapping[str, tuple[ChangeHandler, ...]] = MappingProxyType({
    "StableStudy": (enqueue_verify,),
})


def dispatch(changes: Sequence[Change], context: ChangeContext,
             table: Mapping[str, Sequence[ChangeHandler]] = HANDLERS) -> None:
    """Run every handler of each change's type, in order; a change type without one is skipped."""
    for change in changes:
        for handler in table.get(change.change_type, ()):
            handler(change, context)
