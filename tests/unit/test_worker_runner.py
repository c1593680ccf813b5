"""The worker's loop over real SQLite databases: outbox dispatch, job outcomes, stopping.

The kinds here are test handlers (never in the shipped table); they do not call Orthanc, which
the integration tests run for ``archive.verify``.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import replace
import sys
from pathlib import Path
from typing import Any

import pytest

from archive_api.orthanc import OrthancUnreachable, SyncOrthanc
from archive_state import quarantine_spool
from archive_state.jobs import Job, JobNotFound, JobState
from archive_state.quarantine import QuarantineIndex
from archive_worker import kinds as kinds_table
from archive_worker.context import Handler, JobContext, JobFailed
from archive_worker import runner
from archive_worker.runner import Worker
from testkit.orthanc_process import free_port

from ._api_env import Env, make_env


def make_worker(env: Env, table: dict[str, Handler], name: str = "worker-1") -> Worker:
    return Worker(name=name, settings=env.config.archive, queue=env.deps.jobs,
                  outbox=env.deps.outbox, registry=env.deps.registry,
                  orthanc=SyncOrthanc(f"http://127.0.0.1:{free_port()}", None, timeout=2),
                  kinds=table, version="test", progress_interval=0.0)


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def counting(job: Job, context: JobContext) -> dict[str, Any]:
    total = int(job.params.get("n", 3))
    for i in range(1, total + 1):
        context.progress(i, total, f"step {i}")
    return {"counted": total}


def test_a_job_runs_with_progress_and_its_result_is_kept(env: Env) -> None:
    job = env.queue.enqueue("test.count", {"n": 4})
    worker = make_worker(env, {"test.count": counting})
    assert worker.step() is True
    done = env.queue.get(job.id)
    assert done.state is JobState.SUCCEEDED and done.result == {"counted": 4}
    assert (done.progress_done, done.progress_total, done.progress_message) == (4, 4, "step 4")
    assert worker.step() is False


def test_only_known_kinds_are_claimed(env: Env) -> None:
    job = env.queue.enqueue("someone.elses", {})
    assert make_worker(env, {"test.count": counting}).step() is False
    assert env.queue.get(job.id).state is JobState.QUEUED


def test_a_final_failure_is_not_retried(env: Env) -> None:
    def mismatch(job: Job, context: JobContext) -> dict[str, Any]:
        raise JobFailed("2 of 3 stored file(s) do not match", {"checked": 3, "failed": ["a", "b"]})

    job = env.queue.enqueue("test.fail", {})
    make_worker(env, {"test.fail": mismatch}).step()
    failed = env.queue.get(job.id)
    assert failed.state is JobState.FAILED and failed.attempts == 1
    assert failed.last_error == "2 of 3 stored file(s) do not match: ['a', 'b']"


def test_orthanc_unreachable_is_retried_with_backoff(env: Env) -> None:
    def needs_orthanc(job: Job, context: JobContext) -> dict[str, Any]:
        context.orthanc.get_json("/system")
        return {}

    job = env.queue.enqueue("test.orthanc", {})
    with pytest.raises(OrthancUnreachable):
        make_worker(env, {}).orthanc.get_json("/system")
    make_worker(env, {"test.orthanc": needs_orthanc}).step()
    again = env.queue.get(job.id)
    assert again.state is JobState.QUEUED and again.attempts == 1
    assert again.last_error is not None and again.last_error.startswith("Orthanc not reachable")
    assert again.run_after > again.updated_at


def test_an_unexpected_exception_is_logged_and_retried(env: Env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    def broken(job: Job, context: JobContext) -> dict[str, Any]:
        raise KeyError("missing")

    job = env.queue.enqueue("test.broken", {})
    with caplog.at_level(logging.ERROR):
        make_worker(env, {"test.broken": broken}).step()
    assert env.queue.get(job.id).state is JobState.QUEUED
    assert any(r.exc_info for r in caplog.records)


def test_cancel_stops_the_handler_at_its_next_progress(env: Env) -> None:
    seen: list[int] = []

    def cancel_midway(job: Job, context: JobContext) -> dict[str, Any]:
        for i in range(1, 6):
            if i == 3:
                env.queue.cancel(job.id)
            context.progress(i, 5, None)
            seen.append(i)
        return {}

    job = env.queue.enqueue("test.cancel", {})
    make_worker(env, {"test.cancel": cancel_midway}).step()
    assert seen == [1, 2]
    assert env.queue.get(job.id).state is JobState.CANCELLED


def test_stopping_hands_the_job_back_for_retry(env: Env) -> None:
    worker: Worker

    def sigterm_midway(job: Job, context: JobContext) -> dict[str, Any]:
        context.progress(1, 3, None)
        worker.stop()  # what the SIGTERM handler does
        context.progress(2, 3, None)
        raise AssertionError("progress must raise once the worker stops")

    job = env.queue.enqueue("test.stop", {})
    worker = make_worker(env, {"test.stop": sigterm_midway})
    worker.step()
    released = env.queue.get(job.id)
    assert released.state is JobState.QUEUED and released.lease_owner is None
    assert released.last_error is not None and "SIGTERM" in released.last_error


def test_a_lost_lease_drops_the_job_without_reporting(env: Env) -> None:
    def lose_lease(job: Job, context: JobContext) -> dict[str, Any]:
        env.queue.fail(job.id, "worker-1", "forced", retryable=True)  # no longer ours
        context.progress(1, 1, None)
        return {"never": "stored"}

    job = env.queue.enqueue("test.lease", {})
    make_worker(env, {"test.lease": lose_lease}).step()
    after = env.queue.get(job.id)
    assert after.state is JobState.QUEUED and after.result is None


def test_stable_study_enqueues_one_verify_job_per_change(env: Env) -> None:
    env.deps.outbox.append("NewInstance", "Instance", "i1")
    env.deps.outbox.append("StableStudy", "Study", "study-a")
    env.deps.outbox.append("StableStudy", "Study", "study-a")
    worker = make_worker(env, {})  # runs no kind: only the outbox
    assert worker.step() is True
    jobs, total = env.queue.list(kind="archive.verify")
    assert total == 2 and {j.params["study"] for j in jobs} == {"study-a"}
    assert sorted(j.idempotency_key or "" for j in jobs) == ["verify:study-a:2",
                                                             "verify:study-a:3"]
    assert env.deps.outbox.pending("worker") == 0
    assert worker.step() is False


def test_verify_on_stable_studies_can_be_switched_off(tmp_path: Path) -> None:
    env = make_env(tmp_path, archive={"Jobs": {"VerifyStableStudies": False}})
    env.deps.outbox.append("StableStudy", "Study", "study-a")
    make_worker(env, {}).step()
    assert env.queue.list()[1] == 0 and env.deps.outbox.pending("worker") == 0


def test_heartbeat_is_recorded_in_the_registry(env: Env) -> None:
    worker = make_worker(env, {"test.count": counting})
    worker.beat()
    (beat,) = [b for b in env.deps.registry.list() if b.name == "worker-1"]
    assert beat.version == "test" and beat.detail == {"job": None, "kinds": ["test.count"]}


def test_kinds_modules_extend_the_table(tmp_path: Path) -> None:
    table = kinds_table.load(("tests.unit.test_worker_runner",))
    assert set(table) == {"archive.verify", "archive.crash-quarantine", "audit.dicom-log",
                          "audit.door-log", "test.count"}
    with pytest.raises(kinds_table.KindsModuleError):
        kinds_table.load(("no.such.module",))
    with pytest.raises(kinds_table.KindsModuleError, match="KINDS"):
        kinds_table.load(("tests.unit._api_env",))


#: Read by ``test_kinds_modules_extend_the_table`` as a ``--kinds-module``.
KINDS: dict[str, Handler] = {"test.count": counting}


@pytest.mark.parametrize("module", ["archive_worker", "archive_api"])
def test_services_refuse_to_start_without_the_internal_credential(env: Env,
                                                                   module: str) -> None:
    argv = [sys.executable, "-m", module, "--config", str(env.config.path)]
    if module == "archive_worker":
        argv += ["--name", "worker-1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "internal-credential.json does not exist" in done.stderr


def test_the_worker_imports_the_quarantine_spool(env: Env) -> None:
    index = env.deps.quarantine
    assert isinstance(index, QuarantineIndex)
    entry = quarantine_spool.write(index.folder, b"refused bytes", {
        "transport": "dimse", "reasons": [{"code": "pixel-vr", "tag": "(0028,0010)",
                                           "message": "Rows is SS"}]})
    worker = make_worker(env, {})
    worker.quarantine = QuarantineIndex(env.deps.state_engine, "default", index.folder)
    worker.step()
    items, total = index.list()
    assert total == 1 and items[0].id == entry and items[0].reason_codes == ["pixel-vr"]


def test_the_worker_deletes_finished_jobs_past_their_retention(env: Env) -> None:
    job = env.queue.enqueue("test.count", {"n": 1})
    worker = make_worker(env, {"test.count": counting})
    assert worker.step() is True and env.queue.get(job.id).state is JobState.SUCCEEDED
    worker.prune_jobs()  # within the hour: nothing is looked at
    assert env.queue.get(job.id).state is JobState.SUCCEEDED
    clock = worker.monotonic
    worker.monotonic = lambda: clock() + runner.PRUNE_SECONDS
    worker.settings = replace(worker.settings, jobs=replace(worker.settings.jobs,
                                                          keep_finished_days=1e-9))
    worker.prune_jobs()
    with pytest.raises(JobNotFound):
        env.queue.get(job.id)
