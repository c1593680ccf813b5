"""Make Orthanc's modalities (``/modalities``) equal the tenant's store of known modalities.

The store (:class:`archive_state.modalities.ModalityStore`) is the one place modalities are
defined; Orthanc's list is a copy that its DICOM server checks callers against. The copy is
kept in Orthanc's database (``DicomModalitiesInDatabase: true``, set by the launcher:
``archive_door.orthanc_config``), so it survives Orthanc's restarts; the ``DicomModalities`` of
the configuration files are then ignored by Orthanc.

:func:`plan` is the pure part: from the store and Orthanc's ``GET /modalities?expand`` it
computes the ``PUT /modalities/{name}`` (missing or different) and ``DELETE /modalities/{name}``
(in Orthanc, not in the store: made behind the archive's back, e.g. in Orthanc Explorer, and so
never audited) that make them equal. :class:`ModalitySync` applies it after every change through
the API, when the API starts, and every ``interval`` seconds (an Orthanc whose database was
replaced, a change made in Orthanc directly, a change whose sync found Orthanc down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from archive_state.clock import Clock, utc_now
from archive_state.modalities import ModalitySpec, ModalityStore, Operation, specs

from .orthanc import AsyncOrthanc, OrthancError, OrthancHttpError

log = logging.getLogger(__name__)

#: The operations' names in Orthanc's modality JSON.
ALLOW_KEYS: Mapping[Operation, str] = {
    Operation.ECHO: "AllowEcho", Operation.STORE: "AllowStore", Operation.FIND: "AllowFind",
    Operation.GET: "AllowGet", Operation.MOVE: "AllowMove"}
#: The keys of Orthanc's modality JSON that the store decides; others keep Orthanc's defaults.
MANAGED_KEYS = ("AET", "Host", "Port", "Manufacturer", *ALLOW_KEYS.values(), "UseDicomTls")
DEFAULT_INTERVAL = 30.0


def orthanc_body(spec: ModalitySpec) -> dict[str, Any]:
    """The body of ``PUT /modalities/{name}`` for one modality (Orthanc 1.9.0 and later)."""
    body: dict[str, Any] = {"AET": spec.ae_title, "Host": spec.host, "Port": spec.port,
                            "Manufacturer": spec.manufacturer, "UseDicomTls": spec.use_tls}
    body.update({key: spec.allows(op) for op, key in ALLOW_KEYS.items()})
    return body


def _managed(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entry.get(key) for key in MANAGED_KEYS}


@dataclass(frozen=True)
class SyncPlan:
    """What to send Orthanc: bodies to PUT by name, names to DELETE."""

    put: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    delete: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.put and not self.delete


def plan(desired: Mapping[str, ModalitySpec], actual: Mapping[str, Any]) -> SyncPlan:
    """The requests that make Orthanc's ``actual`` modalities (``GET /modalities?expand``:
    name → its JSON) equal the ``desired`` ones. A modality whose managed keys already match is
    left alone; keys we do not manage (``AllowTranscoding``, ``Timeout`` …) are not compared."""
    put: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(desired.items()):
        body = orthanc_body(spec)
        current = actual.get(name)
        if not isinstance(current, Mapping) or _managed(current) != _managed(body):
            put[name] = body
    return SyncPlan(put=put, delete=tuple(sorted(set(actual) - set(desired))))


@dataclass(frozen=True)
class SyncReport:
    """One reconcile: what was planned and what Orthanc refused (name → its message)."""

    at: datetime
    plan: SyncPlan
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class SyncState:
    """How the last reconcile went, for the API's answers."""

    last_at: datetime | None
    ok: bool | None
    error: str | None


class ModalitySync:
    """Reconciles Orthanc with the store, one reconcile at a time in this process.

    Several API processes may reconcile at once: every request is idempotent and each reconcile
    reads the store afresh, so they converge; the periodic reconcile repairs the rare
    interleaving in which an older plan is applied last.
    """

    def __init__(self, store: ModalityStore, orthanc: AsyncOrthanc, *,
                 interval: float = DEFAULT_INTERVAL, clock: Clock = utc_now) -> None:
        self._store = store
        self._orthanc = orthanc
        self.interval = interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self.state = SyncState(last_at=None, ok=None, error=None)

    async def reconcile(self) -> SyncReport:
        """Make Orthanc equal the store now; :class:`~archive_api.orthanc.OrthancError` when
        Orthanc cannot be read (nothing was changed then)."""
        async with self._lock:
            try:
                report = await self._reconcile()
            except OrthancError as exc:
                self.state = SyncState(self._clock(), False, str(exc))
                raise
            error = "; ".join(f"{n}: {m}" for n, m in sorted(report.failed.items())) or None
            self.state = SyncState(report.at, report.ok, error)
            return report

    async def _reconcile(self) -> SyncReport:
        desired = specs(await asyncio.to_thread(self._store.list))
        actual = await self._orthanc.get_json("/modalities?expand")
        if not isinstance(actual, Mapping):
            raise OrthancHttpError(502, "GET", "/modalities?expand", "not a JSON object")
        todo = plan(desired, actual)
        failed: dict[str, str] = {}
        for name, body in todo.put.items():  # PUTs first: a renamed modality is never absent
            try:
                await self._orthanc.request("PUT", f"/modalities/{quote(name)}",
                                            json_body=dict(body))
            except OrthancHttpError as exc:
                failed[name] = exc.message
        for name in todo.delete:
            try:
                await self._orthanc.request("DELETE", f"/modalities/{quote(name)}")
            except OrthancHttpError as exc:
                if exc.status != 404:  # gone already: what we wanted
                    failed[name] = exc.message
        if not todo.empty:
            log.info("modalities synced to Orthanc: put %s, deleted %s",
                     sorted(todo.put), list(todo.delete))
        for name, message in sorted(failed.items()):
            log.error("Orthanc refused the modality %s: %s", name, message)
        return SyncReport(at=self._clock(), plan=todo, failed=failed)

    async def run(self) -> None:
        """Reconcile now and then every ``interval`` seconds, until cancelled; a failure is
        logged and tried again at the next turn."""
        while True:
            try:
                await self.reconcile()
            except OrthancError as exc:
                log.warning("modalities not synced to Orthanc (tried again in %.0f s): %s",
                            self.interval, exc)
            except Exception:
                log.exception("modality sync failed (tried again in %.0f s)", self.interval)
            await asyncio.sleep(self.interval)
