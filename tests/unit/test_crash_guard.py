"""The crash guard over a real SQLite state database and a real log file: how deaths are told
apart and counted, the durable cursor (a restarted worker neither re-reads nor misses a line,
rotation), and the quarantine jobs it enqueues once an instance reached the threshold.

The log lines are the door's own (see test_door_log.py), with their times changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive_config.settings import CrashGuardSettings
from archive_state.crash_watch import CrashWatch, LogCursor, Suspect
from archive_state.db import make_engine, migrate
from archive_state.jobs import JobQueue, JobState
from archive_worker import crash_guard, crash_quarantine, door_log
from archive_worker import kinds as kinds_table
from archive_worker.crash_guard import CrashGuard, Policy, Sighting

from ._api_env import make_env
from .test_door_log import CAPTURED_DICOMWEB, CAPTURED_REFUSED, ORTHANC, SOP, nginx_time
from .test_worker_runner import make_worker

OTHER = "1.2.826.0.1.3680043.8.498.99"


def line_at(when: str, uid: str = SOP, base: str = CAPTURED_DICOMWEB) -> str:
    """The captured line, at another time (``13:08:40`` style) and for another instance."""
    return base.replace("2026/12/02 13:08:40", f"2026/12/02 {when}").replace(SOP, uid)


def at(when: str) -> datetime:
    return nginx_time(f"2026/12/02 {when}")


@dataclass
class Guarded:
    engine: Engine
    log: Path
    watch: CrashWatch
    queue: JobQueue

    def guard(self, policy: Policy = Policy()) -> CrashGuard:
        """A guard as a freshly started worker makes it."""
        return CrashGuard(self.watch, self.queue, self.log, policy, poll_seconds=5.0,
                          upstream_prefix=ORTHANC)

    def append(self, *lines: str) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)


# -- the pure policy -----------------------------------------------------------------------------

def found(when: str, uid: str = SOP) -> door_log.InFlight:
    return door_log.InFlight(at(when), uid, f"GET /…/instances/{uid}/rendered HTTP/1.1")


def test_lines_of_one_death_are_one_death_and_the_next_death_is_another() -> None:
    sightings, last = crash_guard.deaths_of(
        [found("13:08:40"), found("13:08:40", OTHER), found("13:08:41"), found("13:08:45")], None)
    assert [s.death_at for s in sightings] == [at("13:08:40")] * 3 + [at("13:08:45")]
    assert last == at("13:08:45")
    # a death that began in the previous read goes on in this one
    more, _ = crash_guard.deaths_of([found("13:08:46")], last)
    assert more[0].death_at == at("13:08:45")


def sighting(when: str, uid: str = SOP) -> Sighting:
    return Sighting(at(when), uid, f"GET {uid} HTTP/1.1")


def test_deaths_are_counted_once_and_only_within_the_window() -> None:
    policy = Policy(2, timedelta(hours=1))
    one = crash_guard.counted(None, [sighting("10:00:00"), sighting("10:00:00")], policy)
    assert one.deaths == (at("10:00:00"),) and one.death_count == 1
    assert not crash_guard.is_due(one, policy)
    same = crash_guard.counted(one, [sighting("10:00:00")], policy)
    assert same.death_count == 1
    late = crash_guard.counted(one, [sighting("11:00:00")], policy)
    assert late.deaths == (at("11:00:00"),) and late.death_count == 2
    assert not crash_guard.is_due(late, policy)
    soon = crash_guard.counted(one, [sighting("10:59:59")], policy)
    assert soon.deaths == (at("10:00:00"), at("10:59:59"))
    assert crash_guard.is_due(soon, policy)
    assert crash_guard.is_due(one, Policy(1, timedelta(hours=1)))


def test_an_instance_whose_job_is_enqueued_starts_a_new_round_when_it_dies_again() -> None:
    policy = Policy()
    done = Suspect(SOP, (at("10:00:00"), at("10:00:05")), 2, "GET x", at("10:00:00"),
                   at("10:00:05"), job_id=7)
    late = crash_guard.counted(done, [sighting("10:00:05")], policy)  # the same death, read late
    assert (late.deaths, late.death_count, late.job_id) == (done.deaths, 2, 7)
    again = crash_guard.counted(done, [sighting("12:00:00")], policy)
    assert again.job_id is None and again.deaths == (at("12:00:00"),)
    assert again.death_count == 3 and again.first_seen_at == at("10:00:00")


def test_settings_become_the_policy() -> None:
    settings = CrashGuardSettings(deaths_to_quarantine=3, window_seconds=600.0)
    assert Policy.of(settings) == Policy(3, timedelta(minutes=10))


def test_the_log_is_found_beside_the_data() -> None:
    settings = CrashGuardSettings()
    assert crash_guard.door_log_path(settings, {"ARCHIVE_DATA": "/srv/a"}) == Path(
        "/srv/a/logs/door.log")
    assert crash_guard.door_log_path(settings, {}) is None
    assert crash_guard.door_log_path(CrashGuardSettings(door_log="/var/log/door.err"),
                                     {}) == Path("/var/log/door.err")


class CrashWatchContract:
    """The store and the scans over it; run on SQLite here and on PostgreSQL in
    tests/integration/test_crash_watch_postgres.py."""

    @pytest.fixture()
    def guarded(self, state_url: str, tmp_path: Path) -> Iterator[Guarded]:
        engine = make_engine(state_url)
        try:
            yield Guarded(engine, tmp_path / "door.log", CrashWatch(engine, "default"),
                          JobQueue(engine, "default"))
        finally:
            engine.dispose()

    # -- the store ------------------------------------------------------------------------------

    def test_advance_refuses_a_cursor_another_worker_moved(self, guarded: Guarded) -> None:
        watch = guarded.watch
        first = LogCursor(5, 100, None)
        assert watch.advance("door", None, first, [], lambda rows: {})
        assert watch.cursor("door") == first
        assert not watch.advance("door", None, LogCursor(5, 50, None), [], lambda rows: {})
        assert not watch.advance("door", LogCursor(5, 10), LogCursor(5, 200), [], lambda rows: {})
        assert watch.cursor("door") == first


    def test_an_update_that_raises_writes_nothing(self, guarded: Guarded) -> None:
        def broken(rows: object) -> dict[str, Suspect]:
            raise RuntimeError("in the middle")

        with pytest.raises(RuntimeError):
            guarded.watch.advance("door", None, LogCursor(1, 10), [SOP], broken)
        assert guarded.watch.cursor("door") is None and guarded.watch.count() == 0


    # -- scanning the log -----------------------------------------------------------------------

    def test_two_deaths_enqueue_one_quarantine_job(self, guarded: Guarded) -> None:
        guarded.append(CAPTURED_REFUSED, line_at("13:08:40"), line_at("13:08:40", OTHER))
        guard = guarded.guard()
        assert guard.scan() == 0
        suspect = guarded.watch.get(SOP)
        assert suspect is not None and suspect.deaths == (at("13:08:40"),)
        guarded.append(line_at("13:08:45"))
        assert guard.scan() == 1
        jobs, total = guarded.queue.list(kind=crash_quarantine.KIND)
        assert total == 1
        job = jobs[0]
        assert job.state is JobState.QUEUED
        assert job.params == {"sop_instance_uid": SOP, "request": suspect.last_request,
                              "deaths": [at("13:08:40").isoformat(), at("13:08:45").isoformat()]}
        assert crash_quarantine.check_params(job.params) is None
        after = guarded.watch.get(SOP)
        assert after is not None and after.job_id == job.id and len(after.deaths) == 2
        assert guarded.watch.due(2) == []
        other = guarded.watch.get(OTHER)
        assert other is not None and other.death_count == 1 and other.job_id is None
        assert guard.scan() == 0  # nothing new
        assert guarded.queue.list(kind=crash_quarantine.KIND)[1] == 1


    def test_a_restarted_worker_neither_rereads_nor_misses(self, guarded: Guarded) -> None:
        guarded.append(line_at("13:08:40"))
        guarded.guard().scan()
        guarded.append(line_at("13:30:00", OTHER))
        restarted = guarded.guard()  # a new process: nothing in memory
        assert restarted.scan() == 0
        suspect = guarded.watch.get(SOP)
        assert suspect is not None and suspect.death_count == 1  # not counted twice
        assert guarded.watch.get(OTHER) is not None  # not missed
        cursor = guarded.watch.cursor("door")
        assert cursor is not None and cursor.offset == guarded.log.stat().st_size


    def test_lines_written_just_before_a_rotation_still_count(self, guarded: Guarded) -> None:
        guarded.append(line_at("13:08:40"))
        guard = guarded.guard()
        guard.scan()
        guarded.append(line_at("13:20:00"))
        guarded.log.rename(door_log.rotated_path(guarded.log))
        guarded.append(line_at("13:40:00", OTHER))
        assert guard.scan() == 1
        assert guarded.watch.get(OTHER) is not None
        cursor = guarded.watch.cursor("door")
        assert cursor is not None and cursor.inode == guarded.log.stat().st_ino


    def test_a_crash_between_counting_and_enqueueing_is_made_good(self, guarded: Guarded) -> None:
        policy = Policy()
        guarded.append(line_at("13:08:40"), line_at("13:08:45"))
        # what scan() does up to the enqueue, then the process dies
        chunk = door_log.read_new(guarded.log, None)
        assert chunk is not None
        sightings, last = crash_guard.deaths_of(
            [f for f in map(door_log.in_flight, chunk.lines) if f is not None], None)
        assert guarded.watch.advance("door", None, LogCursor(chunk.position.inode,
                                                             chunk.position.offset, last),
                                     {SOP}, crash_guard.updater(sightings, policy))
        assert guarded.queue.list(kind=crash_quarantine.KIND)[1] == 0
        restarted = guarded.guard(policy)
        assert restarted.scan() == 1
        assert guarded.queue.list(kind=crash_quarantine.KIND)[1] == 1
        assert restarted.enqueue_due() == 0


    def test_the_idempotency_key_keeps_one_job_per_round(self, guarded: Guarded) -> None:
        suspect = Suspect(SOP, (at("13:08:40"), at("13:08:45")), 2, "GET x", at("13:08:40"),
                          at("13:08:45"))
        params = crash_quarantine.params_of(suspect)
        key = crash_guard.idempotency_key(suspect)
        first = guarded.queue.enqueue(crash_quarantine.KIND, params, idempotency_key=key)
        second = guarded.queue.enqueue(crash_quarantine.KIND, params, idempotency_key=key)
        assert first.id == second.id


    def test_an_idle_log_costs_a_stat(self, guarded: Guarded,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
        guarded.append(line_at("13:08:40"))
        guard = guarded.guard()
        guard.scan()
        calls: list[str] = []
        original = guarded.watch.cursor

        def counting_cursor(log: str) -> LogCursor | None:
            calls.append(log)
            return original(log)

        monkeypatch.setattr(guarded.watch, "cursor", counting_cursor)
        assert guard.scan() == 0
        assert calls == []  # no database round trip
        guarded.append(line_at("14:00:00", OTHER))
        guard.scan()
        assert calls  # a grown log is read


    def test_poll_scans_at_most_every_poll_seconds(self, guarded: Guarded) -> None:
        clock = [100.0]
        guard = guarded.guard()
        guard.monotonic = lambda: clock[0]
        guarded.append(line_at("13:08:40"))
        guard.poll()
        guarded.append(line_at("13:08:45"))
        clock[0] += 1.0
        assert guard.poll() == 0
        assert guarded.queue.list(kind=crash_quarantine.KIND)[1] == 0
        clock[0] += 5.0
        assert guard.poll() == 1


class TestCrashWatchSQLite(CrashWatchContract):
    @pytest.fixture()
    def state_url(self, tmp_path: Path) -> str:
        url = f"sqlite:///{tmp_path}/state.sqlite"
        migrate(url, "state")
        return url


def test_the_reason_says_what_happened() -> None:
    message = crash_quarantine.reason_message(
        {"request": "GET /x HTTP/1.1", "deaths": ["2026-12-02T13:08:40+00:00", "b"]})
    assert message.startswith("Orthanc stopped twice while serving GET /x HTTP/1.1 (at ")
    assert crash_quarantine.check_params({"sop_instance_uid": ""}) is not None
    assert crash_quarantine.check_params({"sop_instance_uid": SOP, "extra": 1}) is not None


def test_the_worker_loop_runs_the_guard_and_then_the_job(tmp_path: Path) -> None:
    """Wiring: a step of the worker scans the log, enqueues, and claims the quarantine job
    (Orthanc is absent here, so the attempt is handed back to be retried)."""
    env = make_env(tmp_path)
    log = tmp_path / "door.log"
    log.write_text(line_at("13:08:40") + "\n" + line_at("13:08:45") + "\n", encoding="utf-8")
    worker = make_worker(env, dict(kinds_table.KINDS))
    worker.crash_guard = CrashGuard(CrashWatch(env.deps.state_engine, "default"), env.queue, log,
                                    upstream_prefix=ORTHANC)
    assert worker.step() is True
    jobs, total = env.queue.list(kind=crash_quarantine.KIND)
    assert total == 1 and jobs[0].attempts == 1 and jobs[0].state is JobState.QUEUED
    assert jobs[0].last_error is not None and "Orthanc not reachable" in jobs[0].last_error
