"""The process states supervisord knows, read over its XML-RPC control socket.

supervisord (the process manager of the foreground default, docs/architecture.md decision 6)
serves its XML-RPC interface on ``$ARCHIVE_RUN/supervisor.sock``, a unix socket. The standard
library's ``xmlrpc.client`` speaks HTTP over TCP only, so :class:`UnixTransport` gives it a
connection over the socket instead; ``supervisor.getAllProcessInfo`` then lists every program
with its state name, pid and start time.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """An XML-RPC transport over a unix socket (one connection per call)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__()
        self._path = str(path)
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


@dataclass(frozen=True)
class ProcessInfo:
    """One supervisord program: ``state`` is supervisord's name (RUNNING, BACKOFF, FATAL …)."""

    name: str
    state: str
    pid: int | None
    since: datetime | None
    description: str


def all_process_info(socket_path: Path, timeout: float = 0.8) -> list[ProcessInfo]:
    """``supervisor.getAllProcessInfo`` (blocking: run it in a thread from async code)."""
    proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                      transport=UnixTransport(socket_path, timeout))
    raw = proxy.supervisor.getAllProcessInfo()
    out: list[ProcessInfo] = []
    for item in raw if isinstance(raw, list) else []:
        pid = int(item.get("pid") or 0) or None
        start = int(item.get("start") or 0)
        out.append(ProcessInfo(
            name=str(item.get("name", "")),
            state=str(item.get("statename", "UNKNOWN")),
            pid=pid,
            since=datetime.fromtimestamp(start, UTC) if start and pid else None,
            description=str(item.get("description", "")),
        ))
    return out
