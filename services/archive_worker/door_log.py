"""The door's error log: read what is new since a cursor, and find the requests that died with
Orthanc.

nginx writes its errors to stderr, which supervisord appends to ``DATA/logs/door.log`` (rotated
at 50 MB: ``door.log`` becomes ``door.log.1`` and a new ``door.log`` starts). When Orthanc dies,
nginx logs one line for every request it was proxying to Orthanc at that moment, as captured
from a GDCM abort on bookworm::

    2026/12/02 13:08:40 [error] 29981#29981: *45 upstream prematurely closed connection while
    reading response header from upstream, client: 127.0.0.1, server: , request: "GET
    /dicom-web/studies/1.2…/series/1.2…/instances/1.2…/frames/1/rendered HTTP/1.1", upstream:
    "http://127.0.0.1:44903/dicom-web/studies/…/rendered", host: "127.0.0.1:55013"

(one line in the file). A connection reset (``recv() failed (104: Connection reset by peer)``) or
a broken pipe while sending says the same. ``connect() failed (111: Connection refused)`` does
not: that request came while Orthanc was already down, it did not cause anything.

Pure apart from :func:`read_new`, which only reads files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Chunk", "DoorError", "InFlight", "LogPosition", "MAX_READ", "died_with_upstream",
           "in_flight", "instance_uid", "parse_line", "read_new", "rotated_path"]

#: Most bytes one :func:`read_new` returns; the rest comes with the next call.
MAX_READ = 4 * 1024 * 1024
#: Longest SOP Instance UID we keep from a request (a valid one has at most 64 characters).
MAX_UID = 255

_LINE = re.compile(
    r"^(?P<at>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] \d+#\d+: "
    r"(?:\*\d+ )?(?P<rest>.*)$")
_REQUEST = re.compile(r', request: "(?P<request>[^"]*)"')
_UPSTREAM = re.compile(r', upstream: "(?P<upstream>[^"]*)"')
#: What nginx says of an upstream that went away mid-request.
_DIED = re.compile(
    r"^(?:upstream prematurely closed connection"
    r"|(?:recv|readv|send|write|writev)\(\) failed "
    r"\((?:104: Connection reset by peer|32: Broken pipe)\))"
    r" while (?:reading|sending)")
_INSTANCE_PATH = re.compile(r"/studies/[^/]+/series/[^/]+/instances/(?P<uid>[^/]+)(?:/|$)")


@dataclass(frozen=True)
class LogPosition:
    """Where reading stopped: the file (its inode) and the offset after the last whole line."""

    inode: int
    offset: int


@dataclass(frozen=True)
class Chunk:
    """Whole lines read by :func:`read_new` and where the next read starts."""

    lines: list[str]
    position: LogPosition
    #: True when the file had nothing more than these lines (nothing left to read now).
    at_end: bool


@dataclass(frozen=True)
class DoorError:
    """One line of nginx's error log, split into what the crash guard needs."""

    at: datetime
    level: str
    message: str
    request: str | None
    upstream: str | None


@dataclass(frozen=True)
class InFlight:
    """A request for one instance that was being served by Orthanc when Orthanc died."""

    at: datetime
    sop_instance_uid: str
    request: str


def rotated_path(path: Path) -> Path:
    """Where supervisord's rotation moves the log: ``door.log`` → ``door.log.1``."""
    return path.with_name(path.name + ".1")


def _read_lines(fd: int, start: int, available: int, limit: int, *,
                final: bool) -> tuple[list[str], int]:
    """Whole lines of the ``available`` bytes from ``start`` (at most ``limit`` of them) and how
    many bytes they take. A ``final`` file (rotated away, nothing more will be appended) gives
    its last line even without a newline; a line longer than ``limit`` is skipped."""
    data = os.pread(fd, min(available, limit), start)
    end = len(data) if final else data.rfind(b"\n") + 1
    if end == 0 and len(data) == limit:
        return [], limit  # one line longer than we ever read at once: not nginx's, skip it
    return data[:end].decode("utf-8", errors="replace").splitlines(), end


def read_new(path: Path, position: LogPosition | None, *, limit: int = MAX_READ) -> Chunk | None:
    """The whole lines added to ``path`` since ``position`` (None: from the start), or None when
    the log does not exist.

    A log whose inode changed was rotated: the rest of the old file is read first if it is
    still there as ``<name>.1`` (so nothing written just before the rotation is missed), then the
    new file from 0. A log shorter than ``position`` was truncated: read from 0.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        stat = os.fstat(fd)  # of the file we read, even if it is rotated meanwhile
        lines: list[str] = []
        start = 0
        if position is not None and position.inode == stat.st_ino:
            start = position.offset if position.offset <= stat.st_size else 0
        elif position is not None:
            lines = _rest_of_rotated(path, position, limit)
        if stat.st_size <= start:
            return Chunk(lines, LogPosition(stat.st_ino, start), at_end=True)
        new_lines, used = _read_lines(fd, start, stat.st_size - start, limit, final=False)
        end = start + used
        return Chunk([*lines, *new_lines], LogPosition(stat.st_ino, end),
                     at_end=end >= stat.st_size)
    finally:
        os.close(fd)


def _rest_of_rotated(path: Path, position: LogPosition, limit: int) -> list[str]:
    try:
        fd = os.open(rotated_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return []
    try:
        stat = os.fstat(fd)
        if stat.st_ino != position.inode or stat.st_size <= position.offset:
            return []
        lines, _ = _read_lines(fd, position.offset, stat.st_size - position.offset, limit,
                               final=True)
        return lines
    finally:
        os.close(fd)


def _local_time(text: str) -> datetime:
    """nginx writes the local time without a zone; as an aware UTC datetime."""
    return datetime.strptime(text, "%Y/%m/%d %H:%M:%S").astimezone(timezone.utc)


def parse_line(line: str) -> DoorError | None:
    """One error-log line, or None for anything that is not one (a continuation, noise)."""
    match = _LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    try:
        at = _local_time(match["at"])
    except ValueError:
        return None
    rest = match["rest"]
    message = rest.split(", client: ", 1)[0]
    request = _REQUEST.search(rest)
    upstream = _UPSTREAM.search(rest)
    return DoorError(at, match["level"], message,
                     request["request"] if request else None,
                     upstream["upstream"] if upstream else None)


def died_with_upstream(error: DoorError, upstream_prefix: str | None = None) -> bool:
    """Whether the line says the upstream went away while serving the request; with
    ``upstream_prefix`` (``http://127.0.0.1:18042/``) only for that upstream (Orthanc)."""
    if _DIED.match(error.message) is None or error.request is None:
        return False
    if upstream_prefix is None:
        return True
    return error.upstream is not None and error.upstream.startswith(upstream_prefix)


def _uid(text: str) -> str | None:
    value = unquote(text).strip()
    if not value or len(value) > MAX_UID or any(c.isspace() or c == '"' for c in value):
        return None
    return value


def instance_uid(request: str) -> str | None:
    """The SOP Instance UID a request line asks for: DICOMweb at instance level (the instance,
    its metadata, frames, rendered, thumbnail, bulk data) or WADO-URI (``objectUID=``); None
    for anything else (studies and series as a whole, QIDO, static files)."""
    words = request.split(" ")
    if len(words) < 2 or words[0] not in ("GET", "HEAD"):
        return None
    target = urlsplit(words[1])
    found = _INSTANCE_PATH.search(target.path)
    if found is not None:
        return _uid(found["uid"])
    for key, value in parse_qsl(target.query, keep_blank_values=True):
        if key.lower() == "objectuid":
            return _uid(value)
    return None


def in_flight(line: str, upstream_prefix: str | None = None) -> InFlight | None:
    """The instance request that died with Orthanc on this line, if it is such a line."""
    error = parse_line(line)
    if error is None or not died_with_upstream(error, upstream_prefix):
        return None
    assert error.request is not None
    uid = instance_uid(error.request)
    return None if uid is None else InFlight(error.at, uid, error.request)
