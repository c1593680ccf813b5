"""The door's error log: lines nginx really wrote when Orthanc died, and reading from a cursor
across rotation and truncation.

The ``CAPTURED`` lines were written by the door of a test stack (bookworm, Orthanc 1.10.1) when a
GET of an instance whose Rows has VR SS made GDCM abort Orthanc (exit 134), through DICOMweb
and through WADO-URI, and while the API service was not up yet.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from archive_worker import door_log
from archive_worker.door_log import LogPosition

STUDY = "1.2.826.0.1.3680043.8.498.80401597924737067116082499430603412158"
SERIES = "1.2.826.0.1.3680043.8.498.61832914972041633560316106567387622994"
SOP = "1.2.826.0.1.3680043.8.498.16074012742066498280969917395055085271"
ORTHANC = "http://127.0.0.1:44903/"
RENDERED = f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1/rendered"
WADO = (f"/wado?requestType=WADO&studyUID={STUDY}&seriesUID={SERIES}&objectUID={SOP}"
        "&contentType=image/jpeg")

CAPTURED_DICOMWEB = (
    "2026/12/02 13:08:40 [error] 29981#29981: *45 upstream prematurely closed connection while "
    "reading response header from upstream, client: 127.0.0.1, server: , request: "
    f'"GET {RENDERED} HTTP/1.1", upstream: "http://127.0.0.1:44903{RENDERED}", '
    'host: "127.0.0.1:55013"')
CAPTURED_WADO = (
    "2026/12/02 13:08:50 [error] 29981#29981: *50 upstream prematurely closed connection while "
    "reading response header from upstream, client: 127.0.0.1, server: , request: "
    f'"GET {WADO} HTTP/1.1", upstream: "http://127.0.0.1:44903{WADO}", host: "127.0.0.1:55013"')
CAPTURED_REFUSED = (
    "2026/12/02 13:08:35 [error] 29981#29981: *1 connect() failed (111: Connection refused) "
    "while connecting to upstream, client: 127.0.0.1, server: , request: \"GET /api/health "
    "HTTP/1.1\", subrequest: \"/_door/auth\", upstream: \"http://127.0.0.1:34941/api/auth/check\", "
    'host: "127.0.0.1:55013"')
CAPTURED_AUTH = (
    "2026/12/02 13:08:35 [error] 29981#29981: *1 auth request unexpected status: 502 while "
    'sending to client, client: 127.0.0.1, server: , request: "GET /api/health HTTP/1.1", '
    'host: "127.0.0.1:55013"')


def nginx_time(text: str) -> datetime:
    """nginx's local-time stamp as the parser must read it."""
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").astimezone(timezone.utc)


def test_a_request_that_died_with_orthanc_names_its_instance() -> None:
    found = door_log.in_flight(CAPTURED_DICOMWEB, ORTHANC)
    assert found is not None
    assert found.sop_instance_uid == SOP
    assert found.request == f"GET {RENDERED} HTTP/1.1"
    assert found.at == nginx_time("2026/12/02 13:08:40")
    wado = door_log.in_flight(CAPTURED_WADO, ORTHANC)
    assert wado is not None and wado.sop_instance_uid == SOP


def test_lines_that_are_not_a_death_in_flight_are_ignored() -> None:
    assert door_log.in_flight(CAPTURED_REFUSED, None) is None  # Orthanc was down already
    assert door_log.in_flight(CAPTURED_AUTH, None) is None
    assert door_log.in_flight("", None) is None
    notice = "2026/12/02 13:08:40 [notice] 1#1: signal process started"
    assert door_log.in_flight(notice, None) is None
    # the same death of another upstream (the API service) is not Orthanc's
    assert door_log.in_flight(CAPTURED_DICOMWEB, "http://127.0.0.1:18042/") is None


def test_the_parser_splits_a_line() -> None:
    error = door_log.parse_line(CAPTURED_REFUSED)
    assert error is not None
    assert error.level == "error"
    assert error.message == ("connect() failed (111: Connection refused) while connecting to "
                             "upstream")
    assert error.request == "GET /api/health HTTP/1.1"
    assert error.upstream == "http://127.0.0.1:34941/api/auth/check"


@pytest.mark.parametrize("message", [
    "recv() failed (104: Connection reset by peer) while reading response header from upstream",
    "readv() failed (104: Connection reset by peer) while reading upstream",
    "upstream prematurely closed connection while reading upstream",
    "writev() failed (32: Broken pipe) while sending request to upstream",
])
def test_every_way_nginx_says_the_upstream_went_away(message: str) -> None:
    line = CAPTURED_DICOMWEB.replace(
        "upstream prematurely closed connection while reading response header from upstream",
        message)
    found = door_log.in_flight(line, ORTHANC)
    assert found is not None and found.sop_instance_uid == SOP


@pytest.mark.parametrize("message", [
    "upstream timed out (110: Connection timed out) while reading response header from upstream",
    "connect() failed (111: Connection refused) while connecting to upstream",
    "no live upstreams while connecting to upstream",
])
def test_a_slow_or_absent_orthanc_is_not_a_death_in_flight(message: str) -> None:
    line = CAPTURED_DICOMWEB.replace(
        "upstream prematurely closed connection while reading response header from upstream",
        message)
    assert door_log.in_flight(line, ORTHANC) is None


@pytest.mark.parametrize(("request_line", "uid"), [
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP} HTTP/1.1", SOP),
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}/metadata HTTP/1.1", SOP),
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/1,2,3 HTTP/1.1", SOP),
    (f"HEAD /dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}/rendered?quality=90 "
     "HTTP/1.1", SOP),
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/instances/{SOP}/thumbnail HTTP/1.1", SOP),
    (f"GET /wado?requestType=WADO&studyUID={STUDY}&seriesUID={SERIES}&objectUID={SOP} HTTP/1.1", SOP),
    ("GET /wado?requestType=WADO&objectUID=1.2%2E3&contentType=application/dicom HTTP/1.1", "1.2.3"),
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/rendered HTTP/1.1", None),
    (f"GET /dicom-web/studies/{STUDY} HTTP/1.1", None),
    (f"GET /dicom-web/studies/{STUDY}/series/{SERIES}/instances HTTP/1.1", None),
    (f"POST /dicom-web/studies/{STUDY} HTTP/1.1", None),
    ("GET /ohif/index.html HTTP/1.1", None),
    ("garbage", None),
])
def test_which_requests_name_one_instance(request_line: str, uid: str | None) -> None:
    assert door_log.instance_uid(request_line) == uid


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as out:
        out.write(text)


def test_reading_from_a_cursor_returns_only_new_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "door.log"
    assert door_log.read_new(log, None) is None
    write(log, "one\ntwo\nthr")
    first = door_log.read_new(log, None)
    assert first is not None and first.lines == ["one", "two"]
    assert first.position == LogPosition(os.stat(log).st_ino, 8) and not first.at_end
    again = door_log.read_new(log, first.position)
    assert again is not None and again.lines == [] and again.position == first.position
    write(log, "ee\nfour\n")
    rest = door_log.read_new(log, first.position)
    assert rest is not None and rest.lines == ["three", "four"] and rest.at_end
    assert rest.position.offset == log.stat().st_size


def test_a_rotated_log_is_finished_then_the_new_one_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "door.log"
    write(log, "old 1\n")
    seen = door_log.read_new(log, None)
    assert seen is not None
    write(log, "old 2, written just before the rotation\n")
    log.rename(door_log.rotated_path(log))  # what supervisord's rotation does
    write(log, "new 1\n", "w")
    chunk = door_log.read_new(log, seen.position)
    assert chunk is not None
    assert chunk.lines == ["old 2, written just before the rotation", "new 1"]
    assert chunk.position == LogPosition(log.stat().st_ino, log.stat().st_size)


def test_a_new_log_without_the_old_one_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "door.log"
    write(log, "old\n")
    seen = door_log.read_new(log, None)
    assert seen is not None
    log.unlink()
    write(log, "new\n", "w")
    chunk = door_log.read_new(log, LogPosition(seen.position.inode + 1, 4))
    assert chunk is not None and chunk.lines == ["new"]


def test_a_truncated_log_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "door.log"
    write(log, "a long first line\nand a second\n")
    seen = door_log.read_new(log, None)
    assert seen is not None
    write(log, "short\n", "w")  # same inode, smaller than the cursor
    chunk = door_log.read_new(log, seen.position)
    assert chunk is not None and chunk.lines == ["short"]


def test_reads_are_bounded_and_a_monster_line_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "door.log"
    write(log, "x" * 100 + "\nafter\n")
    chunk = door_log.read_new(log, None, limit=50)
    assert chunk is not None and chunk.lines == [] and chunk.position.offset == 50
    while not chunk.at_end:
        chunk = door_log.read_new(log, chunk.position, limit=50)
        assert chunk is not None
        if chunk.lines:
            break
    assert chunk.lines[-1] == "after"
