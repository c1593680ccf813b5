"""Orthanc's log → DIMSE audit rows: the lines of both platforms, the requests they make up
(with and without thread names), the 5-minute aggregates and their rows; the tailer's durable
offset, rotation and flush; the worker's ``audit.dicom-log`` kind. The log lines are the ones
Orthanc 1.10.1 and 1.12.7 wrote for DCMTK's echoscu, storescu, findscu, movescu and getscu
(times replaced)."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from archive_api.orthanc import OrthancHttpError
from archive_audit import atna, export_csv
from archive_audit import orthanc_log as ol
from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_audit.dicom_log import Aggregate, Resource, aggregate, event_of, split_closed
from archive_audit.dicom_requests import SETTLE, SETTLE_QUICK, DimseRequest, Tracker
from archive_audit.dicom_tail import DicomLogTailer, cached
from archive_audit.search import AuditFilter
from archive_config.security_settings import SecuritySettings
from archive_config.settings import (ArchiveSettings, DicomAuditSettings, DicomSettings,
                                     control_database_url, state_database_url)
from archive_door import programs
from archive_state.db import make_engine, migrate
from archive_state.jobs import JobQueue, JobState
from archive_worker import audit_dicom_log
from archive_worker.context import JobContext
from tests.unit._audit_env import (NAME, T0, ManualClock, audit, clock,  # noqa: F401
                                   control_template, engine)

STUDY_ID = "5f063801-ba8f6deb-aaab6aa6-f869b8db-16153dfb"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def stamp(at: datetime, level: str = "I") -> str:
    return f"{level}{at.astimezone():%m%d %H:%M:%S.%f}"


def bookworm(at: datetime, message: str, *, level: str = "I", source: str = "main.cpp:352",
             dicom: bool = False) -> str:
    """A line as Orthanc 1.10.1 writes it (no thread name)."""
    return f"{stamp(at, level)} {source}] {'(dicom) ' if dicom else ''}{message}"


def trixie(at: datetime, thread: str, message: str, *, level: str = "I",
           source: str = "main.cpp:358", dicom: bool = False) -> str:
    """A line as Orthanc 1.12.7 writes it (the thread's name, right-aligned)."""
    return f"{stamp(at, level)} {thread:>16} {source}] {'(dicom) ' if dicom else ''}{message}"


def incoming(request: str, aet: str = "CT_SITE_A", ip: str = "10.1.0.7") -> str:
    return f"Incoming {request} request from AET {aet} on IP {ip}, calling AET ARCHIVE"


def connection(aet: str = "CT_SITE_A", ip: str = "10.1.0.7") -> str:
    return f"Incoming connection from AET {aet} on IP {ip}, calling AET ARCHIVE"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def facts(lines: list[str], now: datetime = T0 + timedelta(hours=1)) -> list[ol.Fact]:
    return [f for f in (ol.read_fact(text, now) for text in lines) if f is not None]


def settled(lines: list[str]) -> list[DimseRequest]:
    tracker = Tracker()
    tracker.feed_all(facts(lines))
    return tracker.settle(T0 + timedelta(hours=1))


# --- lines -----------------------------------------------------------------------------------


def test_both_platforms_line_formats() -> None:
    old = ol.parse_line(bookworm(at(1.5), connection()), T0)
    new = ol.parse_line(trixie(at(2), "DICOM-SERVER", "Association Received from AET CT_SITE_A "
                               "on IP 10.1.0.7", dicom=True,
                               source="CommandDispatcher.cpp:334"), T0)
    assert old is not None and new is not None
    assert (old.at, old.level, old.thread) == (at(1.5), "I", None)
    assert old.message == connection()
    assert (new.at, new.thread) == (at(2), "DICOM-SERVER")
    assert new.message == "Association Received from AET CT_SITE_A on IP 10.1.0.7"
    assert new.at.tzinfo == timezone.utc


def test_the_year_is_the_latest_not_in_the_future() -> None:
    december = datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)
    line = ol.parse_line(bookworm(december, connection()), datetime(2027, 1, 1, 0, 1,
                                                                    tzinfo=timezone.utc))
    assert line is not None and line.at.year == 2026


@pytest.mark.parametrize("text", [
    "", "Orthanc has started", "W1204 01:06:49.187513 main.cpp:2017] Orthanc version: 1.10.1",
    bookworm(T0, 'Creating attachment "7f38" of "DICOM" type (size: 1MB)',
             source="FilesystemStorage.cpp:125"),
    bookworm(T0, "New instance stored", source="ServerContext.cpp:637"),
    "I1304 01:06:49.538237 main.cpp:317] " + connection(),  # month 13
])
def test_other_lines_hold_no_fact(text: str) -> None:
    assert ol.read_fact(text, T0) is None


def test_every_fact_of_both_platforms() -> None:
    lines = [
        bookworm(at(0), connection()),
        bookworm(at(0), incoming("Store")),
        trixie(at(0), "DICOM-SERVER", "Association Received from AET STRANGER on IP 10.9.9.9",
               dicom=True),
        bookworm(at(0), "Rejected association for remote AET STRANGER on IP 10.9.9.9",
                 level="W", source="CommandDispatcher.cpp:620"),
        bookworm(at(0), "Rejected association, because of a bad called AET in the request "
                 "(OTHER)", level="W"),
        trixie(at(0), "DICOM-3", 'Rejected Get request from remote DICOM modality with AET '
               '"STRANGER" and hostname "10.9.9.9"', level="W"),
        trixie(at(0), "DICOM-3", 'Move-SCU request received for AET "DEST"', dicom=True),
        bookworm(at(0), f'Sending resource {STUDY_ID} to modality "DEST" in synchronous mode',
                 dicom=True),
        bookworm(at(0), f'C-GET: Sending resource {STUDY_ID} to modality "CT_SITE_A"',
                 dicom=True),
        bookworm(at(0), "Accessing an inexistent item: Unknown modality for AET: NOWHERE",
                 level="E", source="OrthancException.cpp:58"),
        bookworm(at(0), "IMoveRequestHandler Failed: Accessing an inexistent item", level="E"),
    ]
    found = facts(lines)
    assert [type(f).__name__ for f in found] == [
        "Connection", "Request", "AssociationReceived", "AssociationRefused",
        "CalledAetRefused", "RequestRefused", "MoveDestination", "MoveResource", "GetResource",
        "UnknownDestination", "HandlerFailed"]
    connected, request, received, refused, called, not_allowed, dest, sent, got, unknown, \
        failed = found
    assert isinstance(connected, ol.Connection) and connected.called == "ARCHIVE"
    assert isinstance(request, ol.Request)
    assert (request.request, request.aet, request.ip) == ("Store", "CT_SITE_A", "10.1.0.7")
    assert isinstance(received, ol.AssociationReceived) and received.thread == "DICOM-SERVER"
    assert isinstance(refused, ol.AssociationRefused) and refused.ip == "10.9.9.9"
    assert isinstance(called, ol.CalledAetRefused) and called.called == "OTHER"
    assert isinstance(not_allowed, ol.RequestRefused) and not_allowed.request == "Get"
    assert isinstance(dest, ol.MoveDestination) and dest.destination == "DEST"
    assert isinstance(sent, ol.MoveResource) and sent.resource == STUDY_ID
    assert isinstance(got, ol.GetResource) and got.aet == "CT_SITE_A"
    assert isinstance(unknown, ol.UnknownDestination) and unknown.destination == "NOWHERE"
    assert isinstance(failed, ol.HandlerFailed) and failed.request == "Move"


def test_an_ae_title_with_spaces() -> None:
    [fact] = facts([bookworm(at(0), incoming("Find", aet="CT 1 西院"))])
    assert isinstance(fact, ol.Request) and fact.aet == "CT 1 西院"


# --- requests --------------------------------------------------------------------------------


def test_five_stores_are_five_requests() -> None:
    lines = [bookworm(at(0), connection())] + [
        bookworm(at(0.1 * i), incoming("Store")) for i in range(5)]
    requests = settled(lines)
    assert [(r.request, r.aet, r.ip, r.called, r.outcome) for r in requests] == [
        ("Store", "CT_SITE_A", "10.1.0.7", "ARCHIVE", "success")] * 5


def test_a_refused_association_names_the_called_ae() -> None:
    [refused] = settled([
        bookworm(at(0), connection("STRANGER", "10.9.9.9")),
        bookworm(at(0), "Rejected association for remote AET STRANGER on IP 10.9.9.9",
                 level="W")])
    assert (refused.request, refused.aet, refused.called) == ("Associate", "STRANGER", "ARCHIVE")
    assert (refused.outcome, refused.reason) == ("denied", "unknown-ae")


def test_a_bad_called_ae_is_refused_for_the_caller_just_received() -> None:
    [refused] = settled([
        bookworm(at(0), "Association Received from AET CT_SITE_A on IP 10.1.0.7", dicom=True),
        bookworm(at(0), "Rejected association, because of a bad called AET in the request "
                 "(PACS)", level="W")])
    assert (refused.aet, refused.ip, refused.called, refused.reason) == (
        "CT_SITE_A", "10.1.0.7", "PACS", "called-ae")


def test_a_refused_request_on_1_10() -> None:
    [get] = settled([
        bookworm(at(0), incoming("Get", "STRANGER", "10.9.9.9")),
        bookworm(at(0), "DICOM authorization rejected  for AET STRANGER on IP 10.9.9.9: This "
                 'AET is not listed in configuration option "DicomModalities"', level="W"),
        bookworm(at(0), 'Rejected Get request from remote DICOM modality with AET "STRANGER" '
                 'and hostname "10.9.9.9"', level="W")])
    assert (get.request, get.outcome, get.reason) == ("Get", "denied", "not-allowed")


def test_a_move_on_1_10_gets_its_destination_and_study() -> None:
    [move] = settled([
        bookworm(at(0), incoming("Move")),
        bookworm(at(0.04), 'Move-SCU request received for AET "DEST"', dicom=True),
        bookworm(at(0.05), f'Sending resource {STUDY_ID} to modality "DEST" in synchronous '
                 "mode", dicom=True)])
    assert (move.destination, move.resources, move.outcome) == ("DEST", (STUDY_ID,), "success")


def test_a_move_to_an_unknown_destination_fails() -> None:
    [move] = settled([
        bookworm(at(0), incoming("Move")),
        bookworm(at(0), 'Move-SCU request received for AET "NOWHERE"', dicom=True),
        bookworm(at(0), "Accessing an inexistent item: Unknown modality for AET: NOWHERE",
                 level="E"),
        bookworm(at(0), "IMoveRequestHandler Failed: Accessing an inexistent item", level="E")])
    assert (move.outcome, move.reason, move.destination) == (
        "failure", "unknown-destination", "NOWHERE")


def test_on_1_12_threads_keep_concurrent_moves_apart() -> None:
    """Two callers' C-MOVEs in flight at once, whose identifiers arrive in the other order:
    the thread names give each its own destination and study."""
    requests = settled([
        trixie(at(0), "DICOM-1", incoming("Move", "A_AE", "10.0.0.1")),
        trixie(at(0.001), "DICOM-2", incoming("Move", "B_AE", "10.0.0.2")),
        trixie(at(0.002), "DICOM-2", 'Move-SCU request received for AET "DEST_B"', dicom=True),
        trixie(at(0.003), "DICOM-1", 'Move-SCU request received for AET "DEST_A"', dicom=True),
        trixie(at(0.004), "DICOM-1", 'Sending resource study-a to modality "DEST_A" in '
               "synchronous mode", dicom=True),
        trixie(at(0.005), "DICOM-2", 'Sending resource study-b to modality "DEST_B" in '
               "synchronous mode", dicom=True)])
    assert [(r.aet, r.destination, r.resources) for r in requests] == [
        ("A_AE", "DEST_A", ("study-a",)), ("B_AE", "DEST_B", ("study-b",))]


def test_a_get_on_1_12_collects_its_resources() -> None:
    [get] = settled([
        trixie(at(0), "DICOM-0", incoming("Get")),
        trixie(at(0), "DICOM-0", 'C-GET-SCU request received from AET "CT_SITE_A"', dicom=True),
        trixie(at(0), "DICOM-0", f'C-GET: Sending resource {STUDY_ID} to modality "CT_SITE_A"',
               dicom=True),
        trixie(at(0), "DICOM-0", 'C-GET: Sending resource other-study to modality "CT_SITE_A"',
               dicom=True)])
    assert get.resources == (STUDY_ID, "other-study")


def test_requests_settle_after_a_while_and_roundtrip_json() -> None:
    tracker = Tracker()
    tracker.feed_all(facts([bookworm(at(0), incoming("Move"))]))
    assert tracker.settle(at(1)) == []
    [kept] = tracker.open
    assert DimseRequest.from_json(kept.to_json()) == kept
    again = Tracker([kept])  # the next run, from the stored state
    again.feed_all(facts([bookworm(at(0.5), 'Move-SCU request received for AET "DEST"',
                                   dicom=True)]))
    [move] = again.settle(at(0) + SETTLE)
    assert move.destination == "DEST" and again.open == []


def test_stores_settle_sooner_than_retrieves() -> None:
    tracker = Tracker()
    tracker.feed_all(facts([bookworm(at(0), incoming("Store")), bookworm(at(0), incoming("Get"))]))
    assert tracker.settle(at(0.5)) == []
    [store] = tracker.settle(at(0) + SETTLE_QUICK)
    assert store.request == "Store" and [r.request for r in tracker.open] == ["Get"]
    tracker.feed_all(facts([bookworm(at(0.6), 'Rejected Store request from remote DICOM '
                                     'modality with AET "X" and hostname "Y"', level="W")]))
    assert [r.request for r in tracker.settle(at(0) + SETTLE)] == ["Get"]


# --- aggregates and rows ---------------------------------------------------------------------


def test_aggregates_count_per_caller_operation_resource_window() -> None:
    lines = [bookworm(at(i), incoming("Store")) for i in range(5)]
    lines += [bookworm(at(10), incoming("Find")), bookworm(at(11), incoming("Store", "MR_1")),
              bookworm(at(400), incoming("Store"))]  # the next window
    counted = aggregate(settled(lines))
    summary = sorted((a.key.request, a.key.aet, a.key.window, a.count) for a in counted.values())
    assert summary == [("Find", "CT_SITE_A", T0, 1), ("Store", "CT_SITE_A", T0, 5),
                       ("Store", "CT_SITE_A", T0 + timedelta(minutes=5), 1),
                       ("Store", "MR_1", T0, 1)]
    again = aggregate(settled([bookworm(at(20), incoming("Store"))]), counted)
    assert max(a.count for a in again.values()) == 6 and max(
        a.count for a in counted.values()) == 5  # the old mapping is left as it was
    for item in again.values():
        assert Aggregate.from_json(item.to_json()) == item
    assert aggregate(settled([bookworm(at(0), incoming("NAction"))])) == {}


def test_windows_close_after_grace() -> None:
    counted = aggregate(settled([bookworm(at(0), incoming("Echo")),
                                 bookworm(at(400), incoming("Echo"))]))
    ready, rest = split_closed(counted, at(5 * 60 + 59), timedelta(seconds=60), 100)
    assert ready == [] and len(rest) == 2
    ready, rest = split_closed(counted, at(6 * 60), timedelta(seconds=60), 100)
    assert [a.key.window for a in ready] == [T0] and len(rest) == 1
    ready, rest = split_closed(counted, T0, timedelta(seconds=60), 1)
    assert len(ready) == 1 and len(rest) == 1


def test_the_row_of_five_stores() -> None:
    [item] = aggregate(settled([bookworm(at(i), incoming("Store")) for i in range(5)])).values()
    event = event_of(item, None, "hosp-a")
    assert (event.action, event.outcome, event.actor, event.actor_kind) == (
        "dicom-store", "success", "CT_SITE_A", "dicom")
    assert (event.source_ip, event.tenant, event.at) == ("10.1.0.7", "hosp-a", T0)
    assert event.detail == {"source": "orthanc-log", "operation": "C-STORE", "count": 5,
                            "called_aet": "ARCHIVE", "first": T0.isoformat(),
                            "last": at(4).isoformat(), "window": T0.isoformat()}
    assert event.study_uid is None and event.patient_id is None


def test_the_row_of_a_move_names_study_patient_and_destination() -> None:
    [item] = aggregate(settled([
        bookworm(at(0), incoming("Move")),
        bookworm(at(0), 'Move-SCU request received for AET "DEST"', dicom=True),
        bookworm(at(0), f'Sending resource {STUDY_ID} to modality "DEST" in synchronous mode',
                 dicom=True)])).values()
    event = event_of(item, Resource("Study", STUDY_UID, "P-1", NAME, 5), "hosp-a")
    assert (event.action, event.study_uid, event.patient_id, event.patient_name) == (
        "dicom-move", STUDY_UID, "P-1", NAME)
    assert event.detail["destination_aet"] == "DEST" and event.detail["instances"] == 5
    assert event.detail["orthanc_id"] == STUDY_ID and event.resource == f"orthanc/study/{STUDY_ID}"
    unresolved = event_of(item, None, "hosp-a")
    assert unresolved.detail["resource_unresolved"] is True and unresolved.study_uid is None


def test_refusals_and_worklists_have_their_own_rows() -> None:
    counted = aggregate(settled([
        bookworm(at(0), connection("STRANGER", "10.9.9.9")),
        bookworm(at(0), "Rejected association for remote AET STRANGER on IP 10.9.9.9",
                 level="W"),
        bookworm(at(1), incoming("Get", "US_1")),
        bookworm(at(1), 'Rejected Get request from remote DICOM modality with AET "US_1" and '
                 'hostname "10.1.0.7"', level="W"),
        bookworm(at(2), incoming("FindWorklist", "US_1"))]))
    events = sorted((event_of(a, None, "t") for a in counted.values()), key=lambda e: e.at or T0)
    assert [(e.action, e.outcome, e.actor, e.detail["operation"], e.detail.get("reason"))
            for e in events] == [
        ("dicom-refused", "denied", "STRANGER", "A-ASSOCIATE", "unknown-ae"),
        ("dicom-refused", "denied", "US_1", "C-GET", "not-allowed"),
        ("dicom-find", "success", "US_1", "C-FIND", None)]
    assert events[2].detail["worklist"] is True


# --- the tailer ------------------------------------------------------------------------------


class Resources:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, orthanc_id: str) -> Resource | None:
        self.asked.append(orthanc_id)
        return Resource("Study", STUDY_UID, "P-1", NAME, 5) if orthanc_id == STUDY_ID else None


def _write(path: Path, *texts: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        for text in texts:
            f.write(text + "\n")


@pytest.fixture()
def log_path(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder / "orthanc.log"


@pytest.fixture()
def tailer(audit: AuditLog, log_path: Path, clock: ManualClock) -> DicomLogTailer:
    return DicomLogTailer(audit, log_path, "hosp-a", resolve=Resources(), clock=clock)


def _rows(audit: AuditLog) -> list[Any]:
    return list(reversed(audit.search(AuditFilter(limit=1000)).items))


def _stores(n: int, start: float = 0) -> list[str]:
    return [bookworm(at(start + i), incoming("Store")) for i in range(n)]


def test_windows_become_rows_once_closed(tailer: DicomLogTailer, audit: AuditLog,
                                         log_path: Path, clock: ManualClock) -> None:
    _write(log_path, bookworm(at(0), connection()), *_stores(5),
           bookworm(at(9), 'Creating attachment "x" of "DICOM" type', source="F.cpp:1"))
    clock.now = at(30)
    report = tailer.run()
    assert (report.lines, report.facts, report.requests, report.events) == (7, 6, 5, 0)
    assert (report.open, report.pending, report.at_end) == (0, 1, True)
    assert _rows(audit) == []
    clock.now = at(6 * 60)
    assert tailer.run().events == 1
    [row] = _rows(audit)
    assert (row.action, row.actor, row.detail["count"], row.tenant) == (
        "dicom-store", "CT_SITE_A", 5, "hosp-a")
    assert audit.verify().ok
    assert tailer.run().events == 0  # nothing twice


def test_a_request_cut_by_the_chunk_end_is_completed_by_the_next_run(
        tailer: DicomLogTailer, audit: AuditLog, log_path: Path, clock: ManualClock) -> None:
    clock.now = at(1)
    _write(log_path, bookworm(at(0), incoming("Move")))
    assert tailer.run().open == 1
    _write(log_path, bookworm(at(0.1), 'Move-SCU request received for AET "DEST"', dicom=True),
           bookworm(at(0.1), f'Sending resource {STUDY_ID} to modality "DEST" in synchronous '
                    "mode", dicom=True))
    clock.now = at(7 * 60)
    tailer.run()
    [row] = _rows(audit)
    assert (row.action, row.detail["destination_aet"], row.study_uid) == (
        "dicom-move", "DEST", STUDY_UID)


def test_restart_reads_on_from_the_stored_offset(audit: AuditLog, log_path: Path,
                                                 clock: ManualClock) -> None:
    _write(log_path, *_stores(3))
    clock.now = at(60)
    DicomLogTailer(audit, log_path, "hosp-a", clock=clock).run()
    _write(log_path, *_stores(2, start=10))
    clock.now = at(10 * 60)
    report = DicomLogTailer(audit, log_path, "hosp-a", clock=clock).run()  # a new process
    assert report.lines == 2 and report.events == 1
    assert [r.detail["count"] for r in _rows(audit)] == [5]


def test_rotation_reads_the_rest_of_the_old_file_first(tailer: DicomLogTailer, log_path: Path,
                                                       audit: AuditLog,
                                                       clock: ManualClock) -> None:
    clock.now = at(60)
    _write(log_path, *_stores(1))
    tailer.run()
    _write(log_path, *_stores(1, start=5))  # written just before the rotation, still unread
    log_path.rename(log_path.with_name("orthanc.log.1"))
    _write(log_path, *_stores(1, start=9))
    assert tailer.run().requests == 2
    clock.now = at(10 * 60)
    tailer.run()
    assert [r.detail["count"] for r in _rows(audit)] == [3]


def test_flush_settles_and_closes_everything_now(tailer: DicomLogTailer, audit: AuditLog,
                                                 log_path: Path, clock: ManualClock) -> None:
    clock.now = at(1)
    _write(log_path, *_stores(2), bookworm(at(1), incoming("Echo")))
    report = tailer.run(flush=True)
    assert (report.events, report.open, report.pending) == (2, 0, 0)
    assert sorted((r.action, r.detail["count"]) for r in _rows(audit)) == [
        ("dicom-echo", 1), ("dicom-store", 2)]
    _write(log_path, *_stores(1, start=2))  # the same window goes on: a second row
    tailer.run(flush=True)
    assert [r.detail["count"] for r in _rows(audit)][-1] == 1


def test_resources_are_asked_once(audit: AuditLog, log_path: Path, clock: ManualClock) -> None:
    resources = Resources()
    tailer = DicomLogTailer(audit, log_path, "t", resolve=resources, clock=clock)
    lines = []
    for i, aet in enumerate(("A_AE", "B_AE")):
        lines += [bookworm(at(i), incoming("Get", aet)),
                  bookworm(at(i), f'C-GET: Sending resource {STUDY_ID} to modality "{aet}"',
                           dicom=True)]
    _write(log_path, *lines)
    clock.now = at(10 * 60)
    assert tailer.run(flush=True).events == 2
    assert resources.asked == [STUDY_ID]
    assert {(r.actor, r.patient_id) for r in _rows(audit)} == {("A_AE", "P-1"), ("B_AE", "P-1")}


def test_search_finds_rows_by_calling_ae_action_study_patient(
        tailer: DicomLogTailer, audit: AuditLog, log_path: Path, clock: ManualClock) -> None:
    _write(log_path, *_stores(2), bookworm(at(3), incoming("Get", "ct_site_b")),
           bookworm(at(3), f'C-GET: Sending resource {STUDY_ID} to modality "ct_site_b"',
                    dicom=True))
    clock.now = at(10 * 60)
    tailer.run()
    assert len(audit.search(AuditFilter(operator="ct_site_a")).items) == 1
    assert [r.action for r in audit.search(AuditFilter(actions=("dicom-get",))).items] == [
        "dicom-get"]
    assert len(audit.search(AuditFilter(study=STUDY_UID)).items) == 1
    assert len(audit.search(AuditFilter(patient="王小明")).items) == 1
    assert len(audit.search(AuditFilter(start=at(2), end=at(4))).items) == 1


def test_a_tailer_that_lost_the_race_writes_nothing(audit: AuditLog, log_path: Path,
                                                    clock: ManualClock) -> None:
    _write(log_path, *_stores(1))
    clock.now = at(600)
    slow = DicomLogTailer(audit, log_path, "t", clock=clock)
    before = slow.state()
    assert DicomLogTailer(audit, log_path, "t", clock=clock).run().events == 1
    assert slow._commit(before, None, (), {}, []) is False
    assert len(_rows(audit)) == 1


def test_cached_remembers_none_too() -> None:
    resources = Resources()
    lookup = cached(resources)
    assert lookup("gone") is None and lookup("gone") is None and resources.asked == ["gone"]


# --- the worker kind -------------------------------------------------------------------------


class FakeOrthanc:
    """Orthanc's REST for one study (and a 404 for anything else)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def get_json(self, path: str) -> Any:
        self.paths.append(path)
        if path == f"/studies/{STUDY_ID}":
            return {"MainDicomTags": {"StudyInstanceUID": STUDY_UID},
                    "PatientMainDicomTags": {"PatientID": "P-9", "PatientName": NAME}}
        if path == f"/studies/{STUDY_ID}/statistics":
            return {"CountInstances": 5}
        raise OrthancHttpError(404, "GET", path, "Unknown resource")

    def post_json(self, path: str, body: Any = None) -> Any:
        raise AssertionError(path)

    def request(self, method: str, path: str, *, json_body: Any = None) -> httpx.Response:
        raise AssertionError(path)


def test_resolver_tries_each_level() -> None:
    orthanc = FakeOrthanc()
    resolve = audit_dicom_log.orthanc_resources(orthanc)
    assert resolve(STUDY_ID) == Resource("Study", STUDY_UID, "P-9", NAME, 5)
    assert resolve("gone") is None
    assert orthanc.paths[-4:] == ["/studies/gone", "/series/gone", "/instances/gone",
                                  "/patients/gone"]


def test_worker_kind_runs_the_tailer_and_schedules_itself(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_DATA", str(tmp_path / "data"))
    settings = ArchiveSettings(state_directory=str(tmp_path / "state"), tenant="hosp-a")
    (tmp_path / "state").mkdir()
    migrate(control_database_url(settings), "control")
    migrate(state_database_url(settings), "state")
    path = audit_dicom_log.orthanc_log_path(settings, {"ARCHIVE_DATA": str(tmp_path / "data")})
    assert path == tmp_path / "data" / "logs" / "orthanc.log"
    given = ArchiveSettings(state_directory="/s", dicom=DicomSettings(
        audit=DicomAuditSettings(orthanc_log="/var/log/orthanc/orthanc.log")))
    assert audit_dicom_log.orthanc_log_path(given, {}) == Path("/var/log/orthanc/orthanc.log")
    path.parent.mkdir(parents=True)
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    _write(path, *[bookworm(old, incoming("Store")) for _ in range(5)],
           bookworm(old, incoming("Get")),
           bookworm(old, f'C-GET: Sending resource {STUDY_ID} to modality "CT_SITE_A"',
                    dicom=True))
    state = make_engine(state_database_url(settings))
    try:
        queue = JobQueue(state, settings.tenant)
        first = audit_dicom_log.schedule(queue, 60)
        assert audit_dicom_log.schedule(queue, 60).id == first.id
        job = queue.enqueue(audit_dicom_log.KIND, {"every": 60})
        context = JobContext(FakeOrthanc(), lambda d, t, m: None, logging.getLogger("test"),
                             settings)
        result = audit_dicom_log.tail(job, context)
        assert (result["requests"], result["events"], result["pending"]) == (6, 2, 0)
        assert result["next_job"] == first.id and queue.get(first.id).state == JobState.QUEUED
    finally:
        state.dispose()
    control = make_engine(control_database_url(settings))
    try:
        log = AuditLog(control, load_or_create_key(key_path(settings.state_directory)))
        rows = {r.action: r for r in log.search(AuditFilter(operator="CT_SITE_A")).items}
        assert rows["dicom-store"].detail["count"] == 5
        assert (rows["dicom-get"].study_uid, rows["dicom-get"].patient_id) == (STUDY_UID, "P-9")
        assert log.verify().ok
    finally:
        control.dispose()


@pytest.mark.parametrize("params, ok", [
    ({}, True), ({"every": 60}, True), ({"flush": True}, True), ({"flush": 1}, False),
    ({"every": 5}, False), ({"every": "60"}, False), ({"other": 1}, False)])
def test_worker_kind_params(params: dict[str, Any], ok: bool) -> None:
    assert (audit_dicom_log.check_params(params) is None) is ok


# --- exports ---------------------------------------------------------------------------------


def test_csv_and_atna_of_dimse_rows(tailer: DicomLogTailer, audit: AuditLog, log_path: Path,
                                    clock: ManualClock) -> None:
    _write(log_path, *_stores(5),
           bookworm(at(1), incoming("Find")),
           bookworm(at(2), incoming("Move")),
           bookworm(at(2), 'Move-SCU request received for AET "DEST"', dicom=True),
           bookworm(at(2), f'Sending resource {STUDY_ID} to modality "DEST" in synchronous mode',
                    dicom=True),
           bookworm(at(3), incoming("Get")),
           bookworm(at(3), f'C-GET: Sending resource {STUDY_ID} to modality "CT_SITE_A"',
                    dicom=True),
           bookworm(at(4), connection("STRANGER", "10.9.9.9")),
           bookworm(at(4), "Rejected association for remote AET STRANGER on IP 10.9.9.9",
                    level="W"),
           bookworm(at(5), incoming("Echo")))
    clock.now = at(10 * 60)
    tailer.run()
    rows = {r.action: r for r in _rows(audit)}
    assert set(rows) == {"dicom-store", "dicom-find", "dicom-move", "dicom-get",
                         "dicom-refused", "dicom-echo"}
    cells = export_csv.cells(rows["dicom-store"])
    assert "DICOM 接收影像 C-STORE" in cells and "CT_SITE_A" in cells

    def role(participant: ET.Element) -> str | None:
        code = participant.find("RoleIDCode")
        return None if code is None else code.get("csd-code")

    def codes(action: str) -> tuple[str | None, list[str | None], list[tuple[str, str | None]]]:
        message = atna.message(rows[action], atna.AuditSource())
        event = message.find("EventIdentification")
        assert event is not None
        event_id = event.find("EventID")
        assert event_id is not None
        types = [t.get("csd-code") for t in event.findall("EventTypeCode")]
        roles = [(p.get("UserID", ""), role(p)) for p in message.findall("ActiveParticipant")]
        return event_id.get("csd-code"), types, roles

    assert codes("dicom-store") == ("110104", [], [("CT_SITE_A", "110153"),
                                                   ("regional-archive", "110152")])
    assert codes("dicom-find")[0] == "110112"
    assert codes("dicom-get") == ("110102", [], [("CT_SITE_A", "110152"),
                                                 ("regional-archive", "110153")])
    assert codes("dicom-move") == ("110102", [], [("CT_SITE_A", None),
                                                  ("regional-archive", "110153"),
                                                  ("DEST", "110152")])
    assert codes("dicom-refused") == ("110113", ["110126"], [("STRANGER", None),
                                                             ("regional-archive", "110150")])
    assert codes("dicom-echo")[0] == "110100"
    move = atna.message(rows["dicom-move"], atna.AuditSource())
    study = [o.get("ParticipantObjectID") for o in move.findall("ParticipantObjectIdentification")]
    assert study == ["P-1", STUDY_UID]
    actor = move.find("ActiveParticipant")
    assert actor is not None and actor.get("AlternativeUserID") == "AETITLE=CT_SITE_A"


# --- what the launcher gives Orthanc ---------------------------------------------------------


def test_orthanc_logs_for_the_audit_only_when_it_is_on() -> None:
    on = ArchiveSettings(state_directory="/s")
    assert on.dicom_audit and programs.orthanc_arguments(on) == (
        "--verbose-generic", "--verbose-dicom")
    off = ArchiveSettings(state_directory="/s", dicom=DicomSettings(
        audit=DicomAuditSettings(enabled=False)))
    open_archive = ArchiveSettings(state_directory="/s", security=SecuritySettings(enabled=False))
    for settings in (off, open_archive):
        assert not settings.dicom_audit and programs.orthanc_arguments(settings) == ()
