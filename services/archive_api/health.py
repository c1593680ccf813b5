"""``GET /api/health``: every part of the archive and its status, assembled in about a second.

Each part is checked concurrently with a short time-out, so one that hangs (an Orthanc busy
transcoding, a database on a dead disk) makes health say *down* for it instead of making health
itself hang:

* **orthanc**: ``/system``; the versions of the platform come from ``/plugins/{python,dicom-web,
  gdcm}`` and the platform's name from Orthanc's version (1.10.x: Debian bookworm's packages,
  1.12.x: trixie's, anything else: "other").
* **plugin**: our plugin is loaded (``/plugins/python``) and its outbox table answers; the
  detail counts the changes the worker has not consumed yet.
* **control-db**, **state-db**: a ``SELECT 1``.
* **worker-N**: the last heartbeat in the control database (ok when within 3 poll intervals + 5 s).
* **door**: nginx's ``/door-health`` on loopback answers 204.
* **api**: this process (it is answering).
* **dicom-quick-ack** (a feature): whether the quick-ACK shim is loaded and on in Orthanc's
  process (:mod:`.quick_ack`, from ``/proc/<pid>``); the orthanc service's detail says so.

When supervisord's control socket is there, each program's state, pid and start time come from
it too; a program supervisord does not report RUNNING is *down*. Any part not ok makes the whole
status ``degraded`` (HTTP 503), so a load balancer or monitor can poll this one URL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy import Engine, text

from archive_config.config_check import Configuration

from .dicomweb import FEATURE as QIDO_FEATURE, DecodingProbe
from .orthanc import AsyncOrthanc, OrthancError
from . import quick_ack
from .supervisor import ProcessInfo, all_process_info

log = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "down"]
CHECK_TIMEOUT = 0.8
OUTBOX_CONSUMER = "worker"


class _Beat(Protocol):
    name: str
    pid: int
    version: str
    started_at: datetime
    beat_at: datetime
    detail: Mapping[str, Any]


class _Registry(Protocol):
    def list(self) -> Sequence[Any]: ...


class _Outbox(Protocol):
    def pending(self, consumer: str) -> int: ...


@dataclass
class ServiceStatus:
    name: str
    status: Status
    detail: str = ""
    pid: int | None = None
    since: datetime | None = None
    version: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "pid": self.pid,
                "since": _iso(self.since), "version": self.version}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def platform_name(orthanc_version: str | None) -> str:
    """The supported platform an Orthanc version belongs to (docs/architecture.md decision 1)."""
    if not orthanc_version:
        return "unknown"
    if orthanc_version.startswith("1.10."):
        return "bookworm"
    if orthanc_version.startswith("1.12."):
        return "trixie"
    return "other"


def worker_status(name: str, beat: Any | None, now: datetime, poll_seconds: float) -> ServiceStatus:
    """ok when the worker beat within 3 poll intervals + 5 s, down otherwise."""
    if beat is None:
        return ServiceStatus(name, "down", "no heartbeat recorded")
    beat_at = beat.beat_at if beat.beat_at.tzinfo else beat.beat_at.replace(tzinfo=UTC)
    age = (now - beat_at).total_seconds()
    limit = 3 * poll_seconds + 5
    status: Status = "ok" if age <= limit else "down"
    detail = f"last heartbeat {age:.1f} s ago"
    extra = beat.detail.get("job") if isinstance(beat.detail, Mapping) else None
    if extra:
        detail += f"; running job {extra}"
    return ServiceStatus(name, status, detail, beat.pid, beat.started_at, beat.version)


@dataclass
class HealthChecker:
    """Assembles the health document; every dependency is passed in."""

    config: Configuration
    orthanc: AsyncOrthanc
    registry: _Registry
    outbox: _Outbox
    control_engine: Engine
    state_engine: Engine
    probe: DecodingProbe
    version: str
    supervisor_socket: Path | None = None
    door_url: str | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    timeout: float = CHECK_TIMEOUT

    async def document(self) -> dict[str, Any]:
        settings = self.config.archive
        started = time.monotonic()
        orthanc_info, outbox, control, state, beats, door, processes, decoding = (
            await asyncio.gather(
                self._guard(self._orthanc_info()),
                self._guard(asyncio.to_thread(self.outbox.pending, OUTBOX_CONSUMER)),
                self._guard(asyncio.to_thread(_select_one, self.control_engine)),
                self._guard(asyncio.to_thread(_select_one, self.state_engine)),
                self._guard(asyncio.to_thread(self.registry.list)),
                self._guard(self._door()),
                self._guard(self._processes()),
                self._guard(self.probe.check(timeout=self.timeout)),
            ))
        now = self.clock()
        services = [
            self._orthanc_status(orthanc_info),
            self._plugin_status(orthanc_info, outbox),
            ServiceStatus("api", "ok", "answering", os.getpid(), self.started_at, self.version),
            *self._workers(beats, now),
            self._door_status(door),
            _db_status("control-db", control),
            _db_status("state-db", state),
        ]
        if processes is not None:
            _merge_processes(services, processes)
        quick_ack_on = settings.dicom.suppress_delayed_ack
        orthanc = services[0]
        shim = quick_ack.shim_state(orthanc.pid)
        orthanc.detail = f"{orthanc.detail}; {quick_ack.describe(quick_ack_on, shim)}"
        info = orthanc_info if isinstance(orthanc_info, dict) else {}
        system = info.get("system") or {}
        plugins = info.get("plugins") or {}
        features = []
        if decoding is True:
            features.append(QIDO_FEATURE)
        if settings.jobs.verify_stable_studies:
            features.append("verify-stable-studies")
        if settings.viewer.enabled:
            features.append("viewer")
        if settings.door.https.enabled:
            features.append("https")
        if quick_ack.in_effect(quick_ack_on, shim):
            features.append(quick_ack.FEATURE)
        healthy = all(s.status == "ok" for s in services)
        log.debug("health assembled in %.3f s", time.monotonic() - started)
        return {
            "status": "ok" if healthy else "degraded",
            "version": self.version,
            "tenant": settings.tenant,
            "platform": {
                "name": platform_name(system.get("Version")),
                "orthanc": system.get("Version"),
                "pythonPlugin": plugins.get("python"),
                "dicomWeb": plugins.get("dicom-web"),
                "gdcm": plugins.get("gdcm"),
            },
            "services": [s.as_json() for s in services],
            "features": features,
        }

    async def _guard(self, work: Awaitable[Any]) -> Any:
        """``work``'s value, or a :class:`_Failure` when it fails or exceeds the time-out."""
        try:
            return await asyncio.wait_for(work, self.timeout)
        except Exception as exc:  # every failure is a status here, never an error answer
            log.debug("health check failed: %r", exc)
            return _Failure(exc)

    async def _orthanc_info(self) -> dict[str, Any]:
        async def plugin(name: str) -> str | None:
            try:
                info = await self.orthanc.get_json(f"/plugins/{name}", timeout=self.timeout)
            except OrthancError:
                return None
            return info.get("Version") if isinstance(info, dict) else None

        system, python, dicomweb, gdcm = await asyncio.gather(
            self.orthanc.get_json("/system", timeout=self.timeout),
            plugin("python"), plugin("dicom-web"), plugin("gdcm"))
        return {"system": system, "plugins": {"python": python, "dicom-web": dicomweb,
                                              "gdcm": gdcm}}

    async def _door(self) -> int | None:
        if not self.door_url:
            return None
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.get(self.door_url)
        return response.status_code

    async def _processes(self) -> list[ProcessInfo] | None:
        if self.supervisor_socket is None or not self.supervisor_socket.exists():
            return None
        return await asyncio.to_thread(all_process_info, self.supervisor_socket, self.timeout)

    def _orthanc_status(self, info: Any) -> ServiceStatus:
        if not isinstance(info, dict):
            return ServiceStatus("orthanc", "down", _why(info, "Orthanc does not answer"))
        system = info["system"]
        return ServiceStatus("orthanc", "ok", f"{system.get('Name', '')}".strip() or "answering",
                             version=system.get("Version"))

    def _plugin_status(self, info: Any, pending: Any) -> ServiceStatus:
        if not isinstance(pending, int):
            return ServiceStatus("plugin", "down", _why(pending, "outbox table not reachable"),
                                 version=self.version)
        detail = f"outbox: {pending} change(s) pending"
        if not isinstance(info, dict):
            return ServiceStatus("plugin", "down", detail + "; Orthanc does not answer",
                                 version=self.version)
        if not info["plugins"].get("python"):
            return ServiceStatus("plugin", "down", detail + "; Python plugin not loaded",
                                 version=self.version)
        return ServiceStatus("plugin", "ok", detail, version=self.version)

    def _workers(self, beats: Any, now: datetime) -> list[ServiceStatus]:
        jobs = self.config.archive.jobs
        expected = [f"worker-{i}" for i in range(1, jobs.workers + 1)]
        if not isinstance(beats, list):
            return [ServiceStatus(n, "down", _why(beats, "control database not reachable"))
                    for n in expected]
        tenant = self.config.archive.tenant
        latest: dict[str, Any] = {}
        for beat in beats:
            if getattr(beat, "tenant", tenant) != tenant or not beat.name.startswith("worker"):
                continue
            if beat.name not in latest or beat.beat_at > latest[beat.name].beat_at:
                latest[beat.name] = beat
        out = [worker_status(n, latest.get(n), now, jobs.poll_seconds) for n in expected]
        for name in sorted(set(latest) - set(expected)):  # extra workers, shown while alive
            extra = worker_status(name, latest[name], now, jobs.poll_seconds)
            if extra.status == "ok":
                out.append(extra)
        return out

    def _door_status(self, answer: Any) -> ServiceStatus:
        if self.door_url is None:
            return ServiceStatus("door", "down", "no door configured")
        if answer == 204:
            return ServiceStatus("door", "ok", "answering")
        if isinstance(answer, int):
            return ServiceStatus("door", "degraded", f"/door-health answered {answer}")
        return ServiceStatus("door", "down", _why(answer, "nginx does not answer"))


class _Failure:
    """A check that failed; its reason, shortened, becomes the detail."""

    def __init__(self, exc: BaseException) -> None:
        self.reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__


def _why(value: Any, default: str) -> str:
    return f"{default} ({value.reason})" if isinstance(value, _Failure) else default


def _select_one(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1


def _db_status(name: str, answer: Any) -> ServiceStatus:
    if answer is True:
        return ServiceStatus(name, "ok", "SELECT 1 answered")
    return ServiceStatus(name, "down", _why(answer, "database not reachable"))


_RUNNING = frozenset({"RUNNING"})


def _merge_processes(services: list[ServiceStatus], processes: Any) -> None:
    """supervisord's view: pid and start time, and *down* for a program not RUNNING."""
    if not isinstance(processes, list):
        return
    by_name = {p.name: p for p in processes}
    for service in services:
        # the plugin lives inside Orthanc's process
        info = by_name.get("orthanc" if service.name == "plugin" else service.name)
        if info is None:
            continue
        service.pid = info.pid or service.pid
        service.since = info.since or service.since
        if info.state not in _RUNNING:
            service.status = "down"
            service.detail = f"supervisord: {info.state}; {service.detail}".rstrip("; ")


def door_health_url(config: Configuration) -> str:
    """nginx's own health location on loopback (helper 'door' answers it with 204)."""
    door = config.archive.door
    address = door.listen_address
    if address in ("0.0.0.0", "::", "[::]", "*"):
        address = "127.0.0.1"
    return f"http://{address}:{door.http_port}/door-health"
