"""The door's access log → aggregated audit rows: parsing, windows, outcomes; the tailer's
durable offset across runs, rotation and truncation; the worker's ``audit.door-log`` kind."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_audit.door_log import (Aggregate, Patient, action_of, aggregate, event_of,
                                    parse_line, split_closed, study_uid, window_of)
from archive_audit.door_tail import DoorLogTailer, cached
from archive_audit.search import AuditFilter
from archive_config.settings import ArchiveSettings, control_database_url, state_database_url
from archive_state.db import make_engine, migrate
from archive_state.jobs import Job, JobQueue, JobState
from archive_worker import audit_door_log
from archive_worker.context import JobContext, JobFailed
from tests.unit._audit_env import (NAME, T0, ManualClock, audit, clock,  # noqa: F401
                                   control_template, engine)

STUDY = "1.2.840.113619.2.55.3"
OTHER = "1.2.840.113619.2.55.4"


def line(at: datetime = T0, *, uri: str = f"/dicom-web/studies/{STUDY}/series/1.2/instances/"
         "1.3/frames/1", status: int = 200, area: str | None = "dicomweb-view",
         user: str | None = "li.lei", session: str | None = "sess-1", size: int = 1000,
         method: str = "GET", **extra: Any) -> str:
    data: dict[str, Any] = {"time": at.isoformat(), "user": user or "", "session": session or "",
                            "tenant": "hosp-a", "area": area or "", "method": method,
                            "uri": uri, "status": status, "bytes": size, "remote": "10.1.2.3"}
    data.update(extra)
    return json.dumps(data, ensure_ascii=False)


# --- parsing ---------------------------------------------------------------------------------


def test_parse_line_reads_nginx_json() -> None:
    shanghai = T0.astimezone(timezone(timedelta(hours=8)))
    parsed = parse_line(line(shanghai, session=None, user=None))
    assert parsed is not None
    assert parsed.at == T0 and parsed.at.tzinfo == timezone.utc
    assert (parsed.user, parsed.session, parsed.area) == (None, None, "dicomweb-view")
    assert (parsed.status, parsed.bytes, parsed.remote) == (200, 1000, "10.1.2.3")
    dash = parse_line(line(user="-"))
    assert dash is not None and dash.user is None


@pytest.mark.parametrize("text", ["", "not json", "[1]", json.dumps({"time": "x", "uri": "/",
                                  "method": "GET", "status": 200}),
                                  json.dumps({"time": T0.isoformat(), "uri": "/", "status": 200})])
def test_lines_that_are_not_requests_are_skipped(text: str) -> None:
    assert parse_line(text) is None


@pytest.mark.parametrize("uri, uid", [
    (f"/dicom-web/studies/{STUDY}", STUDY),
    (f"/dicom-web/studies/{STUDY}/series/1.2/metadata", STUDY),
    (f"/t/hosp-a/dicom-web/studies/{STUDY}/rendered?quality=90", STUDY),
    (f"/wado?requestType=WADO&studyUID={STUDY}&seriesUID=1.2&objectUID=1.3", STUDY),
    (f"/wado?requestType=WADO&StudyUID={STUDY}", STUDY),
    ("/dicom-web/studies?PatientID=P-001", None),
    ("/dicom-web/studies/not-a-uid/series", None),
    ("/dicom-web/studies/1.2.3%22%3E/series", None),
])
def test_study_uid_from_dicomweb_or_wado_uri(uri: str, uid: str | None) -> None:
    assert study_uid(uri) == uid


@pytest.mark.parametrize("area, uri, method, action", [
    ("dicomweb-view", "/dicom-web/studies/1.2", "GET", "view"),
    ("dicomweb-download", "/dicom-web/studies/1.2/series/3", "GET", "download"),
    ("viewer", "/ohif/app.js", "GET", None),
    ("dicomweb-upload", "/dicom-web/studies", "POST", None),
    ("orthanc-admin", "/orthanc/studies", "GET", None),
    (None, "/dicom-web/studies/1.2", "GET", "download"),
    (None, "/dicom-web/studies/1.2/series/3/instances/4", "GET", "download"),
    (None, "/dicom-web/studies/1.2/series/3/instances/4/frames/1", "GET", "view"),
    (None, "/dicom-web/studies/1.2/metadata", "GET", "view"),
    (None, "/dicom-web/studies?PatientID=1", "GET", "view"),
    (None, "/wado?requestType=WADO&studyUID=1.2&contentType=application/dicom", "GET",
     "download"),
    (None, "/wado?requestType=WADO&studyUID=1.2&contentType=image/jpeg", "GET", "view"),
    (None, "/api/jobs", "GET", None),
    (None, "/dicom-web/studies", "POST", None),
])
def test_action_from_area_or_uri(area: str | None, uri: str, method: str,
                                 action: str | None) -> None:
    parsed = parse_line(line(area=area, uri=uri, method=method))
    assert parsed is not None and action_of(parsed) == action


def test_windows_are_five_minutes_aligned() -> None:
    assert window_of(T0 + timedelta(minutes=7, seconds=59)) == T0 + timedelta(minutes=5)
    assert window_of(T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=10)


# --- aggregation -----------------------------------------------------------------------------


def _parsed(*texts: str) -> list[Any]:
    return [parse_line(t) for t in texts]


def test_requests_aggregate_per_session_study_action_outcome_window() -> None:
    lines = _parsed(
        line(T0 + timedelta(seconds=1)), line(T0 + timedelta(seconds=50), size=500),
        line(T0 + timedelta(minutes=2), uri=f"/dicom-web/studies/{OTHER}/metadata"),
        line(T0 + timedelta(minutes=3), area="dicomweb-download",
             uri=f"/dicom-web/studies/{STUDY}"),
        line(T0 + timedelta(minutes=4), session="sess-2"),
        line(T0 + timedelta(minutes=4), status=403), line(T0 + timedelta(minutes=4), status=401),
        line(T0 + timedelta(minutes=4), status=404),
        line(T0 + timedelta(minutes=6)),  # next window
        line(T0, area="viewer", uri="/ohif/index.html"))
    found = aggregate(lines)
    assert len(found) == 7
    ours = [a for a in found.values() if a.key.study_uid == STUDY and a.key.action == "view"
            and a.key.session == "sess-1" and a.key.outcome == "success"]
    first, second = sorted(ours, key=lambda a: a.key.window)
    assert (first.count, first.bytes) == (2, 1500)
    assert first.first == T0 + timedelta(seconds=1) and first.last == T0 + timedelta(seconds=50)
    assert second.key.window == T0 + timedelta(minutes=5) and second.count == 1
    denied = next(a for a in found.values() if a.key.outcome == "denied")
    assert denied.count == 2 and dict(denied.statuses) == {"403": 1, "401": 1}
    failed = next(a for a in found.values() if a.key.outcome == "failure")
    assert dict(failed.statuses) == {"404": 1}


def test_aggregate_continues_pending_and_roundtrips_json() -> None:
    pending = aggregate(_parsed(line(T0)))
    stored = {k: Aggregate.from_json(json.loads(json.dumps(a.to_json())))
              for k, a in pending.items()}
    assert stored == pending
    more = aggregate(_parsed(line(T0 + timedelta(minutes=1), size=7)), stored)
    (item,) = more.values()
    assert (item.count, item.bytes) == (2, 1007)
    assert next(iter(pending.values())).count == 1  # the old mapping is left as it was


def test_windows_close_after_grace_and_overflow_closes_oldest() -> None:
    pending = aggregate(_parsed(line(T0), line(T0 + timedelta(minutes=5))))
    grace = timedelta(seconds=60)
    ready, rest = split_closed(pending, T0 + timedelta(minutes=5, seconds=59), grace, 100)
    assert ready == [] and len(rest) == 2
    ready, rest = split_closed(pending, T0 + timedelta(minutes=6), grace, 100)
    assert [a.key.window for a in ready] == [T0] and len(rest) == 1
    ready, rest = split_closed(pending, T0, grace, 1)
    assert [a.key.window for a in ready] == [T0] and len(rest) == 1


def test_event_of_an_aggregate() -> None:
    (item,) = aggregate(_parsed(line(T0), line(T0 + timedelta(seconds=9)))).values()
    event = event_of(item, Patient("P-001", NAME))
    assert (event.action, event.outcome, event.actor, event.actor_kind) == (
        "view", "success", "li.lei", "user")
    assert (event.patient_id, event.patient_name, event.study_uid) == ("P-001", NAME, STUDY)
    assert event.at == T0 and event.session == "sess-1" and event.source_ip == "10.1.2.3"
    assert event.detail["count"] == 2 and event.detail["last"] == (
        T0 + timedelta(seconds=9)).isoformat()
    (anonymous,) = aggregate(_parsed(line(user=None, session=None, status=401))).values()
    unknown = event_of(anonymous, None)
    assert (unknown.actor, unknown.actor_kind, unknown.outcome) == (
        "anonymous", "anonymous", "denied")
    assert unknown.detail["patient_unresolved"] is True
    (key,) = aggregate(_parsed(line(session=None, user="ris", kind="api-key"))).values()
    assert event_of(key, None).actor_kind == "api-key"


# --- the tailer ------------------------------------------------------------------------------


class Patients:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, uid: str) -> Patient | None:
        self.asked.append(uid)
        return Patient("P-001", NAME) if uid == STUDY else None


def _write(path: Path, *texts: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as f:
        for text in texts:
            f.write(text + "\n")


@pytest.fixture()
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "door-audit.jsonl"


@pytest.fixture()
def tailer(audit: AuditLog, log_path: Path, clock: ManualClock) -> DoorLogTailer:
    log_path.parent.mkdir()
    return DoorLogTailer(audit, log_path, resolve=Patients(), clock=clock)


def _rows(audit: AuditLog) -> list[Any]:
    return list(reversed(audit.search(AuditFilter(limit=1000)).items))


def test_open_windows_wait_then_become_rows(tailer: DoorLogTailer, audit: AuditLog,
                                            log_path: Path, clock: ManualClock) -> None:
    _write(log_path, line(T0), line(T0 + timedelta(seconds=30)),
           line(T0 + timedelta(seconds=40), uri=f"/dicom-web/studies/{OTHER}"))
    report = tailer.run()
    assert (report.lines, report.events, report.pending, report.at_end) == (3, 0, 2, True)
    assert _rows(audit) == []
    state = tailer.state()
    assert state.position is not None and state.position.offset == log_path.stat().st_size
    clock.advance(6 * 60)
    report = tailer.run()
    assert (report.lines, report.events, report.pending) == (0, 2, 0)
    rows = _rows(audit)
    assert [(r.study_uid, r.detail["count"], r.patient_name) for r in rows] == [
        (STUDY, 2, NAME), (OTHER, 1, None)]
    assert audit.verify().ok


def test_restart_reads_on_from_the_stored_offset(audit: AuditLog, log_path: Path,
                                                 clock: ManualClock) -> None:
    log_path.parent.mkdir()
    _write(log_path, line(T0))
    DoorLogTailer(audit, log_path, clock=clock).run()
    _write(log_path, line(T0 + timedelta(seconds=10)))
    clock.advance(10 * 60)
    again = DoorLogTailer(audit, log_path, clock=clock)  # a new process: state from the DB
    report = again.run()
    assert report.lines == 1 and report.events == 1
    assert [r.detail["count"] for r in _rows(audit)] == [2]


def test_a_partial_last_line_waits_for_its_end(tailer: DoorLogTailer, log_path: Path,
                                               audit: AuditLog, clock: ManualClock) -> None:
    whole = line(T0)
    log_path.write_text(whole + "\n" + whole[:20], encoding="utf-8")
    assert tailer.run().lines == 1
    with log_path.open("a", encoding="utf-8") as f:
        f.write(whole[20:] + "\n")
    assert tailer.run().lines == 1
    clock.advance(600)
    tailer.run()
    assert [r.detail["count"] for r in _rows(audit)] == [2]


def test_rotation_reads_the_rest_of_the_old_file_first(tailer: DoorLogTailer, log_path: Path,
                                                       audit: AuditLog,
                                                       clock: ManualClock) -> None:
    _write(log_path, line(T0))
    tailer.run()
    _write(log_path, line(T0 + timedelta(seconds=5)))  # written before the rotation, unread
    log_path.rename(log_path.with_name(log_path.name + ".1"))
    _write(log_path, line(T0 + timedelta(seconds=9)))
    report = tailer.run()
    assert report.lines == 2
    clock.advance(600)
    tailer.run()
    assert [r.detail["count"] for r in _rows(audit)] == [3]
    state = tailer.state()
    assert state.position is not None and state.position.inode == log_path.stat().st_ino


def test_truncation_starts_again_at_zero(tailer: DoorLogTailer, log_path: Path,
                                         audit: AuditLog, clock: ManualClock) -> None:
    _write(log_path, line(T0), line(T0), line(T0))
    tailer.run()
    log_path.write_text(line(T0 + timedelta(seconds=1)) + "\n", encoding="utf-8")  # copytruncate
    assert tailer.run().lines == 1
    clock.advance(600)
    tailer.run()
    assert [r.detail["count"] for r in _rows(audit)] == [4]


def test_a_missing_log_still_flushes_closed_windows(tailer: DoorLogTailer, log_path: Path,
                                                    audit: AuditLog, clock: ManualClock) -> None:
    assert tailer.run().lines == 0
    _write(log_path, line(T0))
    tailer.run()
    log_path.unlink()
    clock.advance(600)
    assert tailer.run().events == 1


def test_patients_are_asked_once_per_study(audit: AuditLog, log_path: Path,
                                           clock: ManualClock) -> None:
    log_path.parent.mkdir()
    patients = Patients()
    tailer = DoorLogTailer(audit, log_path, resolve=patients, clock=clock)
    _write(log_path, line(T0), line(T0, session="sess-2"), line(T0, status=403))
    clock.advance(600)
    assert tailer.run().events == 3
    assert patients.asked == [STUDY]
    assert {r.patient_id for r in _rows(audit)} == {"P-001"}


def test_a_tailer_that_lost_the_race_writes_nothing(audit: AuditLog, log_path: Path,
                                                    clock: ManualClock) -> None:
    log_path.parent.mkdir()
    _write(log_path, line(T0))
    clock.advance(600)
    slow = DoorLogTailer(audit, log_path, clock=clock)
    before = slow.state()
    assert DoorLogTailer(audit, log_path, clock=clock).run().events == 1
    assert slow._commit(before, None, {}, []) is False
    assert len(_rows(audit)) == 1


def test_cached_remembers_none_too() -> None:
    patients = Patients()
    lookup = cached(patients)
    assert lookup(OTHER) is None and lookup(OTHER) is None and patients.asked == [OTHER]


# --- the worker kind -------------------------------------------------------------------------


class FakeOrthanc:
    def __init__(self) -> None:
        self.finds: list[Any] = []

    def get_json(self, path: str) -> Any:
        raise AssertionError(path)

    def post_json(self, path: str, body: Any = None) -> Any:
        assert path == "/tools/find"
        self.finds.append(body)
        uid = body["Query"]["StudyInstanceUID"]
        if uid != STUDY:
            return []
        return [{"ID": "o1", "PatientMainDicomTags": {"PatientID": "P-9", "PatientName": NAME}}]

    def request(self, method: str, path: str, *, json_body: Any = None) -> httpx.Response:
        raise AssertionError(path)


def test_worker_kind_runs_the_tailer_and_schedules_itself(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ArchiveSettings(state_directory=str(tmp_path / "state"), tenant="hosp-a")
    (tmp_path / "state").mkdir()
    migrate(control_database_url(settings), "control")
    migrate(state_database_url(settings), "state")
    monkeypatch.setenv("ARCHIVE_DATA", str(tmp_path / "data"))
    path = audit_door_log.access_log_path(settings, {"ARCHIVE_DATA": str(tmp_path / "data")})
    assert path == tmp_path / "data" / "logs" / "door-audit.jsonl"
    path.parent.mkdir(parents=True)
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    _write(path, line(old), line(old, uri=f"/dicom-web/studies/{OTHER}"))
    state = make_engine(state_database_url(settings))
    try:
        queue = JobQueue(state, settings.tenant)
        first = audit_door_log.schedule(queue, 60)
        assert audit_door_log.schedule(queue, 60).id == first.id  # one job per slot
        job = queue.enqueue(audit_door_log.KIND, {"every": 60})
        orthanc = FakeOrthanc()
        progress: list[Any] = []
        context = JobContext(orthanc, lambda d, t, m: progress.append((d, t, m)),
                             logging.getLogger("test"), settings)
        result = audit_door_log.tail(job, context)
        assert (result["lines"], result["events"], result["pending"]) == (2, 2, 0)
        assert result["next_job"] == first.id
        assert queue.get(first.id).state == JobState.QUEUED
        assert [f["Query"]["StudyInstanceUID"] for f in orthanc.finds] == [STUDY, OTHER]
    finally:
        state.dispose()
    control = make_engine(control_database_url(settings))
    try:
        log = AuditLog(control, load_or_create_key(key_path(settings.state_directory)))
        rows = log.search(AuditFilter(study=STUDY)).items
        assert [(r.patient_id, r.patient_name, r.tenant) for r in rows] == [
            ("P-9", NAME, "hosp-a")]
        assert log.verify().ok
    finally:
        control.dispose()


@pytest.mark.parametrize("params, ok", [
    ({}, True), ({"every": 60}, True), ({"every": 5}, False), ({"every": True}, False),
    ({"every": "60"}, False), ({"other": 1}, False)])
def test_worker_kind_params(params: dict[str, Any], ok: bool) -> None:
    assert (audit_door_log.check_params(params) is None) is ok


def test_worker_kind_without_settings_fails_for_good() -> None:
    job = Job(1, "t", audit_door_log.KIND, {}, None, JobState.RUNNING, 1, 5, T0, "w", None, 0,
              False, None, None, None, None, None, T0, T0, None, None)
    context = JobContext(FakeOrthanc(), lambda d, t, m: None, logging.getLogger("t"))
    with pytest.raises(JobFailed, match="settings"):
        audit_door_log.tail(job, context)
