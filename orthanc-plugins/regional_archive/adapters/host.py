"""The one adapter between Orthanc's SDK and the runtime.

Three jobs, each a lesson from running on both platforms (docs/decisions.md):

* **Register each callback once and keep it alive.** Orthanc accepts one registration of most
  callbacks; registering a kind twice raises :class:`~regional_archive.errors.RegistrationError`.
  Every callable handed to the SDK is kept in :attr:`SdkAdapter.kept` for the adapter's life
  (the entry script holds the runtime, hence the adapter, until the process ends): on plugin
  5.0 Orthanc crashed with SIGSEGV at shutdown when registered closures had been collected.
* **Names, not SDK integers.** ``orthanc.ChangeType``/``orthanc.ResourceType`` are read once and
  mapped to the names Orthanc's REST API uses (``StableStudy``, ``Study``:
  :class:`~regional_archive.events.ChangeEvent`); an integer the enumeration lacks becomes
  ``Unknown<n>``.
* **Hide 4.0 vs 5.0.** :meth:`SdkAdapter.send_http_status` calls ``SendHttpStatus`` the way the
  running plugin wants it. The plugin has no REST route today (decision 3); the adapter keeps
  the knowledge so that nothing else ever has to.

* **Pair the received-instance callback with the C-STORE filter.** Orthanc calls the first for
  every instance and, for C-STORE only, the second right after it on the same thread (checked on
  1.10.1 and 1.12.x); only the filter knows the calling AE title and can answer a DICOM status.
  A diversion of a C-STORE instance is therefore kept pending, keyed by the OS thread, until
  the filter commits it (:mod:`regional_archive.ingest`). Not in a ``threading.local``: the
  plugin makes a new Python thread state for each callback on Orthanc's threads, so a
  thread-local set in one callback is gone in the next (seen on plugin 4.0).

Exceptions never cross into Orthanc: the callbacks installed here log and swallow whatever the
dispatcher raises, except a refused HTTP upload, which must fail the request (raising is the
only way the SDK's received-instance callback has to say "not stored").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import RegistrationError
from ..events import ChangeEvent, rest_name
from ..ingest import (STATUS_OUT_OF_RESOURCES, IngestAction, IngestDecision, InstanceOrigin,
                      ReceivedInstance, Sender, is_failure)
from .sdk import CStoreInstance, OrthancSdk, RestOutput

log = logging.getLogger(__name__)


class CallbackKind(Enum):
    """The Orthanc callbacks the runtime may register, by the SDK function that registers them."""

    ON_CHANGE = "RegisterOnChangeCallback"
    RECEIVED_INSTANCE = "RegisterReceivedInstanceCallback"
    INCOMING_CSTORE_FILTER = "RegisterIncomingCStoreInstanceFilter"
    STORAGE_AREA = "RegisterStorageArea"
    WORKLIST = "RegisterWorklistCallback"
    FIND = "RegisterFindCallback"
    MOVE = "RegisterMoveCallback"


def enum_names(enumeration: type) -> dict[int, str]:
    """``{value: REST name}`` for the upper-case integer attributes of an SDK enumeration class
    (``STABLE_STUDY = 9`` → ``{9: "StableStudy"}``)."""
    names: dict[int, str] = {}
    for name in dir(enumeration):
        value = getattr(enumeration, name)
        if name.isupper() and isinstance(value, int):
            names[int(value)] = rest_name(name)
    return names


class RefusedUpload(RuntimeError):
    """Raised into Orthanc from the received-instance callback: the upload is not stored."""


class SdkAdapter:
    """The runtime's handle on Orthanc: callback registration, configuration, HTTP answers."""

    def __init__(self, sdk: OrthancSdk) -> None:
        self._sdk = sdk
        self._change_names = enum_names(sdk.ChangeType)
        self._resource_names = enum_names(sdk.ResourceType)
        self._origin_names = {k: InstanceOrigin(v) for k, v in enum_names(sdk.InstanceOrigin).items()
                              if v in InstanceOrigin._value2member_map_}
        #: C-STORE instances diverted by the received-instance callback, for the filter, by
        #: ``threading.get_ident()`` (the GIL serialises access to the dict).
        self._pending: dict[int, IngestDecision | None] = {}
        self._registered: list[CallbackKind] = []
        #: Every callable given to the SDK, referenced for the life of the process.
        self.kept: list[Callable[..., Any]] = []
        #: Plugin < 4.2 (Debian bookworm's 4.0) takes an error body as ``str`` plus its size;
        #: 4.2 added ``RegisterMoveCallback2`` in the same release that fixed the signature.
        self.http_status_takes_size = not hasattr(sdk, "RegisterMoveCallback2")

    # --- registration -------------------------------------------------------------------

    @property
    def registered(self) -> tuple[CallbackKind, ...]:
        return tuple(self._registered)

    def _register(self, kind: CallbackKind, *callbacks: Callable[..., Any]) -> None:
        if kind in self._registered:
            raise RegistrationError(f"{kind.value} is already registered; Orthanc accepts it once")
        self.kept.extend(callbacks)
        getattr(self._sdk, kind.value)(*callbacks)
        self._registered.append(kind)
        log.info("registered %s", kind.value)

    def on_change(self, dispatch: Callable[[ChangeEvent], None],
                  wanted: Collection[str] | None = None) -> None:
        """Register Orthanc's change callback; ``dispatch`` receives named events.

        The Python plugin queues change events and calls this from its own thread, one at a
        time, in order (orthanc-python 3.1+). ``wanted``: the change types (REST names) anyone
        handles; the others (one ``NewInstance`` and three ``NewChildInstance`` per stored image)
        return at once, before any object is made, because this thread shares the GIL with the
        ingest gate on Orthanc's DICOM threads.
        """
        codes = (None if wanted is None else
                 frozenset(code for code, name in self._change_names.items() if name in wanted))

        def on_change_callback(change_type: int, resource_type: int, resource_id: str) -> None:
            if codes is not None and change_type not in codes:
                return
            try:
                dispatch(self.change_event(change_type, resource_type, resource_id))
            except Exception:  # the boundary: nothing propagates into Orthanc
                log.exception("change callback failed (change %r, resource %r %r)",
                              change_type, resource_type, resource_id)

        self._register(CallbackKind.ON_CHANGE, on_change_callback)

    def on_received_instance(self, dispatch: Callable[[ReceivedInstance], IngestDecision]) -> None:
        """Register the received-instance callback and the C-STORE filter that completes it."""
        actions = self._sdk.ReceivedInstanceAction
        dimse = InstanceOrigin.DICOM_PROTOCOL

        def received_instance_callback(data: bytes, origin: int) -> tuple[int, bytes | None]:
            thread = threading.get_ident()
            self._pending.pop(thread, None)
            name = self._origin_names.get(int(origin), InstanceOrigin.UNKNOWN)
            try:
                decision = dispatch(ReceivedInstance(bytes(data), name))
            except Exception:
                log.exception("received-instance dispatch failed (%s): refused", name)
                decision = None
            if decision is not None and decision.action is IngestAction.KEEP:
                return actions.KEEP_AS_IS, None
            if decision is not None and decision.action is IngestAction.REPLACE:
                return actions.MODIFY, decision.data
            if name is dimse:  # the filter, next on this thread, answers the modality
                self._pending[thread] = decision
                return actions.KEEP_AS_IS, None
            status = self._commit(decision, Sender())
            if is_failure(status):
                raise RefusedUpload(f"instance not stored (DICOM status 0x{status:04X})")
            return actions.DISCARD, None

        def cstore_filter(instance: CStoreInstance) -> int:
            thread = threading.get_ident()
            if thread not in self._pending:
                return 0
            decision = self._pending.pop(thread)
            try:
                sender = Sender(calling_aet=instance.GetInstanceRemoteAet())
            except Exception:
                log.exception("C-STORE filter: no calling AE title")
                sender = Sender()
            return self._commit(decision, sender)

        self._register(CallbackKind.RECEIVED_INSTANCE, received_instance_callback)
        self._register(CallbackKind.INCOMING_CSTORE_FILTER, cstore_filter)

    @staticmethod
    def _commit(decision: IngestDecision | None, sender: Sender) -> int:
        if decision is None:
            return STATUS_OUT_OF_RESOURCES
        try:
            return int(decision.commit(sender))
        except Exception:
            log.exception("diverting an instance failed (%s): refused", decision.reason)
            return STATUS_OUT_OF_RESOURCES

    def change_event(self, change_type: int, resource_type: int, resource_id: str) -> ChangeEvent:
        return ChangeEvent(
            change_type=self._change_names.get(int(change_type), f"Unknown{int(change_type)}"),
            resource_type=self._resource_names.get(int(resource_type),
                                                   f"Unknown{int(resource_type)}"),
            resource_id=str(resource_id),
        )

    # --- the index, read from the ingest path ----------------------------------------------

    def stored_instance(self, sop_instance_uid: str) -> bytes | None:
        """The stored file of the instance with this SOP Instance UID, or ``None`` if none is.

        Called by the ingest gate on Orthanc's ingest thread before Orthanc indexes the new
        instance (so no lock of the index is held there); reads only. ``LookupInstance`` raises
        when the UID is unknown, which is the common case.
        """
        try:
            orthanc_id = self._sdk.LookupInstance(sop_instance_uid)
        except Exception:
            return None
        if not orthanc_id:
            return None
        try:
            return bytes(self._sdk.GetDicomForInstance(orthanc_id))
        except Exception:
            log.exception("instance %s is indexed but its file could not be read", orthanc_id)
            return None

    def has_series(self, series_instance_uid: str) -> bool:
        """Whether Orthanc's index holds a series with this Series Instance UID."""
        try:
            return bool(self._sdk.LookupSeries(series_instance_uid))
        except Exception:
            return False

    # --- configuration ------------------------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        """Orthanc's whole configuration, merged and with ``${VAR}`` expanded by Orthanc."""
        value = json.loads(self._sdk.GetConfiguration())
        return value if isinstance(value, dict) else {}

    def configuration_path(self) -> Path | None:
        """The file or folder given to Orthanc on its command line (its one non-option argument)."""
        count = int(self._sdk.GetCommandLineArgumentsCount())
        args = [self._sdk.GetCommandLineArgument(i) for i in range(count)]
        paths = [a for a in args if not a.startswith("-")]
        return Path(paths[-1]).resolve() if paths else None

    # --- HTTP answers -------------------------------------------------------------------

    def send_http_status(self, output: RestOutput, status: int, body: bytes) -> None:
        """Answer a REST callback with a non-200 status and a body, on either plugin API."""
        if self.http_status_takes_size:
            text = body.decode("utf-8", errors="replace")
            output.SendHttpStatus(status, text, len(text.encode("utf-8")))
        else:
            output.SendHttpStatus(status, body)
