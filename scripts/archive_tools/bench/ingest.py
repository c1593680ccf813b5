"""Ingest: DIMSE C-STORE (DCMTK ``storescu``, pynetdicom) and STOW-RS, 1-8 senders at once.

The DIMSE senders are the everyday ones of issue 15: ``storescu`` with ``TCP_NODELAY=1`` (Nagle
off, the best case), ``storescu-nagle`` (Debian's DCMTK as installed: ``TCP_NODELAY=0``, Nagle
on, like many modalities and gateways) and pynetdicom (Python's sockets: Nagle on). Senders that
leave Nagle on wait for the receiver's delayed ACK unless it suppresses it (our quick-ACK shim).

Each run starts from an archive without the set's studies, sends the whole set split between
the senders, and measures (REQUIREMENTS M19):

* time to the first archived image: from the start of the senders to the moment the archive's
  change log (Orthanc's ``/changes`` on its admin REST, written in the same transaction as the instance's index entry)
  shows a new instance, polled every few milliseconds until it does;
* images/s and MB/s (10^6 bytes of DICOM files): the set over the time from the start of the
  senders to the end of the last. A C-STORE response or a STOW-RS answer is sent once the
  instance is stored, so the end of the senders is the end of archiving.

Our archive is reached as clients reach it: DIMSE on Orthanc's DICOM port, STOW-RS through the
door. Issue 6 asks ours to keep at least 0.95 of vanilla's images/s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import requests

from .data import DataSet
from .fleet import FleetFailed, FleetOutcome, run_commands, run_workers, split, storescu_argv
from .results import FIRST_IMAGE, IMAGES_PER_S, INGEST_RATIO, MB_PER_S, Better, MetricSpec
from .runner import CaseFailed
from .servers import OURS, VANILLA, Auth, Server, ServerError

log = logging.getLogger(__name__)

Tool = Literal["storescu", "storescu-nagle", "pynetdicom", "stow"]
Size = Literal["small", "large"]
TOOLS: Final[tuple[Tool, ...]] = ("storescu", "storescu-nagle", "pynetdicom", "stow")
#: What DCMTK reads from ``TCP_NODELAY`` for each storescu sender (0: Nagle left on).
STORESCU_NODELAY: Final[Mapping[str, str]] = {"storescu": "1", "storescu-nagle": "0"}
RUN_TIMEOUT: Final = 900.0
POLL_INTERVAL: Final = 0.002


class FirstArrival:
    """Polls ``/changes`` from ``t0`` until a NewInstance appears after change ``since``."""

    def __init__(self, url: str, since: int, interval: float = POLL_INTERVAL,
                 auth: Auth | None = None) -> None:
        self.url = url
        self.auth = auth
        self.since = since
        self.interval = interval
        self.at: float | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="first-arrival", daemon=True)

    def start(self, _t0: float = 0.0) -> None:
        self._thread.start()

    def _poll(self) -> None:
        since = self.since
        with requests.Session() as session:
            session.auth = self.auth
            while not self._stop.is_set():
                try:
                    body = session.get(f"{self.url}/changes?since={since}&limit=100",
                                       timeout=30).json()
                except (requests.RequestException, ValueError) as error:
                    self.error = str(error)
                    return
                if any(c.get("ChangeType") == "NewInstance" for c in body.get("Changes", ())):
                    self.at = time.monotonic()
                    return
                since = int(body.get("Last", since))
                time.sleep(self.interval)

    def wait(self, timeout: float) -> float:
        self._thread.join(timeout)
        self._stop.set()
        if self.at is None:
            raise CaseFailed(f"no new instance seen in /changes ({self.error or 'timeout'})")
        return self.at

    def cancel(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


@dataclass(frozen=True)
class IngestCase:
    tool: Tool
    size: Size
    parallel: int
    data: DataSet
    stow_batch: int = 10
    repeatable: bool = True
    warmup: bool = False
    sides: tuple[str, str] = (OURS, VANILLA)

    @property
    def scenario(self) -> str:
        return "STOW-RS ingest" if self.tool == "stow" else "DIMSE ingest"

    @property
    def key(self) -> str:
        return f"ingest/{self.tool}/{self.size}/x{self.parallel}"

    @property
    def label(self) -> str:
        what = "CT 512²" if self.size == "small" else "DX 10-50 MB"
        senders = "clients" if self.tool == "stow" else "assoc."
        per_request = self.stow_batch if self.size == "small" else 1
        batch = f", {per_request}/request" if self.tool == "stow" else ""
        tool = "storescu (Nagle on)" if self.tool == "storescu-nagle" else self.tool
        return f"{tool} ×{self.parallel} {senders}, {what} ({self.data.count}{batch})"

    @property
    def specs(self) -> Sequence[MetricSpec]:
        small = self.size == "small"
        return (
            MetricSpec("first image", "s", Better.LOWER, target=FIRST_IMAGE),
            MetricSpec("images/s", "images/s", Better.HIGHER,
                       target=IMAGES_PER_S if small else None, ratio_target=INGEST_RATIO),
            MetricSpec("MB/s", "MB/s", Better.HIGHER, target=None if small else MB_PER_S),
        )

    def _send(self, server: Server, arrival: FirstArrival) -> FleetOutcome:
        groups = split(list(zip(self.data.files, self.data.sizes)), self.parallel)
        if self.tool in STORESCU_NODELAY:
            argvs = [storescu_argv("127.0.0.1", server.dicom_port, server.aet,
                                   [f for f, _ in g]) for g in groups]
            return run_commands(argvs, count=self.data.count, total_bytes=self.data.total_bytes,
                                timeout=RUN_TIMEOUT, on_start=arrival.start,
                                env=storescu_environment(self.tool, os.environ))
        jobs: list[dict[str, Any]] = []
        for group in groups:
            files = [str(f) for f, _ in group]
            if self.tool == "pynetdicom":
                jobs.append({"kind": "cstore", "host": "127.0.0.1", "port": server.dicom_port,
                             "called_aet": server.aet, "calling_aet": "BENCH",
                             "sop_classes": list(self.data.sop_classes), "files": files})
            else:
                jobs.append({"kind": "stow", "url": f"{server.url}/dicom-web", "files": files,
                             "batch": self.stow_batch if self.size == "small" else 1,
                             **server.client_job()})
        return run_workers(jobs, timeout=RUN_TIMEOUT, on_go=arrival.start)

    def run(self, server: Server) -> Mapping[str, Sequence[float]]:
        try:
            server.delete_studies(self.data.study_uids)
            os.sync()  # the previous run's writes must not land on this one
            before = server.count_instances()
            arrival = FirstArrival(server.admin_url, server.last_change(),
                                   auth=server.admin_auth)
        except (ServerError, requests.RequestException) as error:
            raise CaseFailed(f"preparing: {error}") from error
        try:
            outcome = self._send(server, arrival)
            first = arrival.wait(timeout=60)
        except FleetFailed as error:
            raise CaseFailed(str(error)) from error
        finally:
            arrival.cancel()
        stored = server.count_instances() - before
        if stored != self.data.count:
            raise CaseFailed(f"{stored} of {self.data.count} instances stored")
        elapsed = outcome.elapsed
        return {
            "first image": [first - outcome.t0],
            "images/s": [outcome.count / elapsed],
            "MB/s": [outcome.bytes / elapsed / 1e6],
        }


def storescu_environment(tool: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a storescu sender: ``base`` with its ``TCP_NODELAY`` choice."""
    return {**base, "TCP_NODELAY": STORESCU_NODELAY[tool]}


def cases(small: DataSet, large: DataSet, parallel: Sequence[int], tools: Sequence[Tool],
          stow_batch: int) -> list[IngestCase]:
    sizes: tuple[Size, ...] = ("small", "large")
    return [IngestCase(tool, size, n, small if size == "small" else large, stow_batch)
            for tool in tools for size in sizes for n in parallel]


def load(server: Server, data: DataSet, parallel: int = 4) -> float:
    """Store a set with ``parallel`` storescu (for later scenarios); return the seconds it took."""
    groups = split(list(data.files), parallel)
    argvs = [storescu_argv("127.0.0.1", server.dicom_port, server.aet, g) for g in groups]
    try:
        outcome = run_commands(argvs, count=data.count, total_bytes=data.total_bytes,
                               timeout=RUN_TIMEOUT)
    except FleetFailed as error:
        raise CaseFailed(f"loading {data.name} into {server.name}: {error}") from error
    return outcome.elapsed
