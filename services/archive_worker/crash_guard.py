"""The crash guard: an instance that keeps killing Orthanc is found in the door's log and
quarantined, so a viewer asking for it again cannot crash-loop the archive (issue 7, item 5).

Every ``Archive.CrashGuard.PollSeconds`` a worker reads the door's error log from its durable
cursor (:mod:`.door_log`, :mod:`archive_state.crash_watch`), takes the lines of requests for one
instance that died with Orthanc, and counts, per instance, the Orthanc deaths it was in flight
at. Once an instance reaches ``DeathsToQuarantine`` deaths within ``WindowSeconds``, a durable
job (:mod:`.crash_quarantine`) moves it from Orthanc to the quarantine spool.

**One death, many lines.** Every request in flight dies at once, and nginx may log one request
twice (a retry on a kept-alive connection). Lines less than :data:`SAME_DEATH_SECONDS` after the
first line of a death belong to that death (nginx's clock has whole seconds; a restarted Orthanc
answered 0.5 s after the crash at the earliest in our measurements, and must then be asked
again), so an instance requested four times at once is still one death.

The policy functions are pure; :class:`CrashGuard` ties them to the log, the database and the
queue, and is cheap when the log did not grow (one ``stat``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from archive_config.settings import CrashGuardSettings
from archive_state.crash_watch import CrashWatch, LogCursor, Suspect
from archive_state.jobs import JobQueue

from . import crash_quarantine, door_log

log = logging.getLogger(__name__)

#: The cursor's name in ``door_log_cursors``.
LOG_NAME = "door"
#: Lines this close to the first line of a death are the same death.
SAME_DEATH_SECONDS = 1.0
#: Chunks of :data:`door_log.MAX_READ` one scan reads at most before it yields to jobs.
MAX_CHUNKS_PER_SCAN = 8


@dataclass(frozen=True)
class Policy:
    """``Archive.CrashGuard``'s numbers: so many deaths within a window."""

    deaths_to_quarantine: int = 2
    window: timedelta = timedelta(hours=1)

    @classmethod
    def of(cls, settings: CrashGuardSettings) -> "Policy":
        return cls(settings.deaths_to_quarantine, timedelta(seconds=settings.window_seconds))


@dataclass(frozen=True)
class Sighting:
    """A request for an instance, in flight at the Orthanc death that began at ``death_at``."""

    death_at: datetime
    sop_instance_uid: str
    request: str


def deaths_of(found: Sequence[door_log.InFlight], death_at: datetime | None,
              same_death: timedelta = timedelta(seconds=SAME_DEATH_SECONDS),
              ) -> tuple[list[Sighting], datetime | None]:
    """Which death each line belongs to, given when the last death seen began (``death_at``);
    returns the sightings and when the last death now seen began."""
    out: list[Sighting] = []
    current = death_at
    for item in found:
        if current is None or abs(item.at - current) > same_death:
            current = item.at
        out.append(Sighting(current, item.sop_instance_uid, item.request))
    return out, current


def counted(previous: Suspect | None, seen: Sequence[Sighting], policy: Policy) -> Suspect:
    """The instance's row after the deaths it was ``seen`` at (all for its uid, in log order).

    A death already counted is not counted again (late lines of a death, even after its job
    was enqueued); deaths older than the window before the newest are dropped. An instance whose
    quarantine job was enqueued and that is seen at a new death (a copy stored anew) starts a
    new round with no job.
    """
    assert seen, "counted() needs at least one sighting"
    uid = seen[0].sop_instance_uid
    new = {s.death_at for s in seen}
    if previous is None:
        first_seen, old, total, job = seen[0].death_at, set(), 0, None
    else:
        first_seen, total = previous.first_seen_at, previous.death_count
        old, job = set(previous.deaths), previous.job_id
        if job is not None and new - old:
            old, job = set(), None
    added = new - old
    deaths = old | new
    newest = max(deaths)
    kept = tuple(sorted(d for d in deaths if newest - d < policy.window))
    last_seen = max(seen[-1].death_at, previous.last_seen_at if previous else seen[-1].death_at)
    return Suspect(uid, kept, total + len(added), seen[-1].request, first_seen, last_seen, job)


def is_due(suspect: Suspect, policy: Policy) -> bool:
    return suspect.job_id is None and len(suspect.deaths) >= policy.deaths_to_quarantine


def updater(sightings: Sequence[Sighting], policy: Policy,
            ) -> Callable[[Mapping[str, Suspect | None]], Mapping[str, Suspect]]:
    """The pure update :meth:`CrashWatch.advance` applies to the rows of these sightings."""
    by_uid: dict[str, list[Sighting]] = {}
    for sighting in sightings:
        by_uid.setdefault(sighting.sop_instance_uid, []).append(sighting)

    def change(rows: Mapping[str, Suspect | None]) -> Mapping[str, Suspect]:
        return {uid: counted(rows.get(uid), seen, policy) for uid, seen in by_uid.items()}

    return change


def idempotency_key(suspect: Suspect) -> str:
    """One quarantine job per round of deaths: named by the instance and its round's first death."""
    first = suspect.deaths[0] if suspect.deaths else suspect.first_seen_at
    return f"{crash_quarantine.KIND}:{suspect.sop_instance_uid}:{first.isoformat()}"


def door_log_path(settings: CrashGuardSettings, env: Mapping[str, str]) -> Path | None:
    """``Archive.CrashGuard.DoorLog``, or ``$ARCHIVE_DATA/logs/door.log``; None when neither
    is known (the guard then stays off)."""
    if settings.door_log:
        return Path(settings.door_log)
    data = env.get("ARCHIVE_DATA")
    return Path(data) / "logs" / "door.log" if data else None


@dataclass
class CrashGuard:
    """Scans the door's log and enqueues quarantine jobs (see the module docstring)."""

    watch: CrashWatch
    queue: JobQueue
    log_path: Path
    policy: Policy = field(default_factory=Policy)
    poll_seconds: float = 5.0
    #: ``http://127.0.0.1:<Orthanc's HttpPort>/``: only requests proxied to Orthanc count.
    upstream_prefix: str | None = None
    monotonic: Callable[[], float] = time.monotonic
    _scanned_at: float = float("-inf")
    #: (inode, size) of the log when it was last read to its end: unchanged means nothing new.
    _seen: tuple[int, int] | None = None

    def poll(self) -> int:
        """:meth:`scan`, at most every ``poll_seconds``; quarantine jobs enqueued."""
        now = self.monotonic()
        if now - self._scanned_at < self.poll_seconds:
            return 0
        self._scanned_at = now
        return self.scan()

    def scan(self) -> int:
        """Read what is new in the log, count it, enqueue the quarantine jobs now due."""
        try:
            stat = os.stat(self.log_path)
        except FileNotFoundError:
            return 0
        if self._seen == (stat.st_ino, stat.st_size):
            return 0
        for _ in range(MAX_CHUNKS_PER_SCAN):
            expected = self.watch.cursor(LOG_NAME)
            position = (None if expected is None
                        else door_log.LogPosition(expected.inode, expected.offset))
            chunk = door_log.read_new(self.log_path, position)
            if chunk is None:
                return 0
            if not chunk.lines and chunk.position == position:
                if chunk.at_end:
                    self._seen = (chunk.position.inode, chunk.position.offset)
                break
            found = [f for f in (door_log.in_flight(line, self.upstream_prefix)
                                 for line in chunk.lines) if f is not None]
            sightings, death_at = deaths_of(found, expected.death_at if expected else None)
            new = LogCursor(chunk.position.inode, chunk.position.offset, death_at)
            moved = self.watch.advance(LOG_NAME, expected, new,
                                       {s.sop_instance_uid for s in sightings},
                                       updater(sightings, self.policy))
            for sighting in sightings if moved else ():
                log.warning("Orthanc died while serving %s (instance %s)", sighting.request,
                            sighting.sop_instance_uid)
            if chunk.at_end or not chunk.lines:
                if moved and chunk.at_end:
                    self._seen = (chunk.position.inode, chunk.position.offset)
                break
        return self.enqueue_due()

    def enqueue_due(self) -> int:
        """A quarantine job for every instance that reached the threshold and has none yet
        (also those a crash left between counting and enqueueing)."""
        enqueued = 0
        for suspect in self.watch.due(self.policy.deaths_to_quarantine):
            job = self.queue.enqueue(crash_quarantine.KIND, crash_quarantine.params_of(suspect),
                                     idempotency_key=idempotency_key(suspect))
            self.watch.assign_job(suspect.sop_instance_uid, job.id)
            log.warning("instance %s was in flight at %d Orthanc deaths (%s): quarantine job %s",
                        suspect.sop_instance_uid, len(suspect.deaths),
                        ", ".join(d.isoformat() for d in suspect.deaths), job.id)
            enqueued += 1
        return enqueued
