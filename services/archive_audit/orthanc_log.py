"""Orthanc's log lines → the DIMSE facts the DICOM audit counts. Pure.

Orthanc writes one line per message, glog style, in local time without a year or a zone; from
1.12 the thread's name comes before the source file (captured from both platforms; each
example is one line)::

    I1204 01:06:49.538237 main.cpp:352] Incoming Store request from AET CT1 on IP
        10.0.0.5, calling AET ARCHIVE
    I1204 01:07:40.110952          DICOM-3 OrthancMoveRequestHandler.cpp:327] (dicom)
        Move-SCU request received for AET "DEST"

What is read, and which verbosity writes it (``--verbose-generic`` and ``--verbose-dicom``,
which the launcher gives Orthanc when ``Archive.Dicom.Audit.Enabled``):

- generic INFO, one per association and one per DIMSE request, C-STORE included:
  ``Incoming connection from AET A on IP I, calling AET C`` and
  ``Incoming <Echo|Store|Find|FindWorklist|Get|Move|…> request from AET A on IP I, calling
  AET C``;
- dicom INFO: ``Association Received from AET A on IP I``, the C-MOVE destination
  (``Move-SCU request received for AET "D"``) and the Orthanc ids of what a C-MOVE or C-GET
  sends (``Sending resource R to modality "D" in synchronous mode``, ``C-GET: Sending resource R
  to modality "A"``);
- WARNING and ERROR, always written: a refused association (``Rejected association for remote
  AET A on IP I``; ``Rejected association, because of a bad called AET in the request (C)``),
  a refused request (``Rejected Get request from remote DICOM modality with AET "A" and hostname
  "I"``), a C-MOVE to an unknown destination (``… Unknown modality for AET: D``) and a failed
  C-MOVE or C-GET handler (``IMoveRequestHandler Failed: …``).

Query keys (patient, study) are not read: Orthanc masks them (``DeidentifyLogs``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["AssociationReceived", "AssociationRefused", "CalledAetRefused", "Connection", "Fact",
           "GetResource", "HandlerFailed", "LogLine", "MARKERS", "MoveDestination",
           "MoveResource", "Request", "RequestRefused", "UnknownDestination", "fact_of",
           "parse_line", "read_fact"]

_LINE = re.compile(
    r"^(?P<level>[IWEFT])(?P<month>\d\d)(?P<day>\d\d) "
    r"(?P<time>\d\d:\d\d:\d\d\.\d{1,6}) +(?:(?P<thread>\S+) +)?"
    r"(?P<source>[A-Za-z0-9_.+-]+:\d+)\] (?:\((?P<category>[a-z]+)\) )?(?P<message>.*)$")

#: A line holds a fact only if it contains one of these (checked before any regular
#: expression: most of the log is other lines, one per stored attachment, per read …).
MARKERS = ("AET", "Sending resource", "RequestHandler Failed")


@dataclass(frozen=True)
class LogLine:
    at: datetime
    level: str
    #: The thread's name (Orthanc 1.12: ``DICOM-SERVER``, ``DICOM-3``); None on 1.10.
    thread: str | None
    message: str


def _year_of(month: int, day: int, now: datetime) -> int:
    """Orthanc writes no year: the latest year in which month/day is not in the future."""
    year = now.year
    try:
        if datetime(year, month, day, tzinfo=now.tzinfo) > now + timedelta(days=1):
            return year - 1
    except ValueError:  # 29 February of a year that has none: the year before was one
        return year - 1
    return year


def parse_line(text: str, now: datetime) -> LogLine | None:
    """One line of Orthanc's log (local time, ``now`` aware), or None for anything else."""
    match = _LINE.match(text.rstrip("\r\n"))
    if match is None:
        return None
    month, day = int(match["month"]), int(match["day"])
    local = now.astimezone()
    try:
        clock = datetime.strptime(match["time"].ljust(15, "0"), "%H:%M:%S.%f").time()
        naive = datetime.combine(datetime(_year_of(month, day, local), month, day), clock)
    except ValueError:
        return None
    at = naive.astimezone().astimezone(timezone.utc)  # the worker's local zone is Orthanc's
    return LogLine(at, match["level"], match["thread"], match["message"])


@dataclass(frozen=True)
class _Fact:
    at: datetime
    thread: str | None


@dataclass(frozen=True)
class Connection(_Fact):
    """An association was asked for (before Orthanc decides whether to accept it)."""

    aet: str
    ip: str
    called: str


@dataclass(frozen=True)
class AssociationReceived(_Fact):
    aet: str
    ip: str


@dataclass(frozen=True)
class AssociationRefused(_Fact):
    """The association was rejected: this AE title from this address is not known."""

    aet: str
    ip: str


@dataclass(frozen=True)
class CalledAetRefused(_Fact):
    """The association was rejected: it called another AE title than the archive's."""

    called: str


@dataclass(frozen=True)
class Request(_Fact):
    """One DIMSE request; ``request`` is Orthanc's name of its type (``Store``, ``Move`` …)."""

    request: str
    aet: str
    ip: str
    called: str


@dataclass(frozen=True)
class RequestRefused(_Fact):
    request: str
    aet: str
    ip: str


@dataclass(frozen=True)
class MoveDestination(_Fact):
    destination: str


@dataclass(frozen=True)
class MoveResource(_Fact):
    """A C-MOVE sends this Orthanc resource (a patient, study, series or instance)."""

    resource: str
    destination: str


@dataclass(frozen=True)
class GetResource(_Fact):
    resource: str
    aet: str


@dataclass(frozen=True)
class UnknownDestination(_Fact):
    destination: str


@dataclass(frozen=True)
class HandlerFailed(_Fact):
    """A C-MOVE or C-GET failed in Orthanc's handler; ``request`` is ``Move`` or ``Get``."""

    request: str


Fact = (Connection | AssociationReceived | AssociationRefused | CalledAetRefused | Request
        | RequestRefused | MoveDestination | MoveResource | GetResource | UnknownDestination
        | HandlerFailed)

_AE_IP = r"AET (?P<aet>.*?) on IP (?P<ip>[^ ,]+)"
_Builder = Callable[[LogLine, "re.Match[str]"], Fact]
_PATTERNS: tuple[tuple[re.Pattern[str], _Builder], ...] = (
    (re.compile(rf"^Incoming connection from {_AE_IP}, calling AET (?P<called>.*)$"),
     lambda l, m: Connection(l.at, l.thread, m["aet"], m["ip"], m["called"])),
    (re.compile(rf"^Incoming (?P<request>[A-Za-z]+) request from {_AE_IP}, calling AET "
                r"(?P<called>.*)$"),
     lambda l, m: Request(l.at, l.thread, m["request"], m["aet"], m["ip"], m["called"])),
    (re.compile(rf"^Association Received from {_AE_IP}$"),
     lambda l, m: AssociationReceived(l.at, l.thread, m["aet"], m["ip"])),
    (re.compile(r"^Rejected association for remote AET (?P<aet>.*?) on IP (?P<ip>\S+)$"),
     lambda l, m: AssociationRefused(l.at, l.thread, m["aet"], m["ip"])),
    (re.compile(r"^Rejected association, because of a bad called AET in the request "
                r"\((?P<called>.*)\)$"),
     lambda l, m: CalledAetRefused(l.at, l.thread, m["called"])),
    (re.compile(r'^Rejected (?P<request>[A-Za-z]+) request from remote DICOM modality with AET '
                r'"(?P<aet>.*)" and hostname "(?P<ip>[^"]*)"$'),
     lambda l, m: RequestRefused(l.at, l.thread, m["request"], m["aet"], m["ip"])),
    (re.compile(r'^Move-SCU request received for AET "(?P<destination>.*)"$'),
     lambda l, m: MoveDestination(l.at, l.thread, m["destination"])),
    (re.compile(r'^Sending resource (?P<resource>\S+) to modality "(?P<destination>.*)" in '
                r"(?:a?synchronous) mode$"),
     lambda l, m: MoveResource(l.at, l.thread, m["resource"], m["destination"])),
    (re.compile(r'^C-GET: Sending resource (?P<resource>\S+) to modality "(?P<aet>.*)"$'),
     lambda l, m: GetResource(l.at, l.thread, m["resource"], m["aet"])),
    (re.compile(r"Unknown modality for AET: (?P<destination>.*)$"),
     lambda l, m: UnknownDestination(l.at, l.thread, m["destination"])),
    (re.compile(r"^I(?P<request>Move|Get)RequestHandler Failed"),
     lambda l, m: HandlerFailed(l.at, l.thread, m["request"])),
)


def fact_of(line: LogLine) -> Fact | None:
    """What ``line`` says of a DIMSE association, or None."""
    for pattern, build in _PATTERNS:
        match = pattern.search(line.message)
        if match is not None:
            return build(line, match)
    return None


def read_fact(text: str, now: datetime) -> Fact | None:
    """``fact_of(parse_line(text))``, with the cheap test first (see :data:`MARKERS`)."""
    if not any(marker in text for marker in MARKERS):
        return None
    line = parse_line(text, now)
    return None if line is None else fact_of(line)
