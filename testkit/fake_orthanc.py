"""A fake of the ``orthanc`` module (Python plugin 4.0 or 5.0) for unit tests of the plugin.

It stands in for the SDK only where Orthanc cannot run (unit tests); integration tests run the
real Orthanc. What it reproduces, because the plugin depends on it:

* the enumerations as classes of plain ``int`` attributes, and callbacks called with ``int``;
* one registration per callback: a second one raises, as Orthanc refuses it;
* callbacks held **weakly**: :meth:`FakeOrthanc.fire_change` fails if the plugin let a
  registered callback be garbage collected (plugin 5.0 crashed at shutdown when it did);
* ``RestOutput.SendHttpStatus``: ``(status, body: str, size: int)`` on 4.0 (bookworm),
  ``(status, body: bytes)`` on 4.2+/5.0 (trixie), a ``TypeError`` otherwise, as the real
  argument parser raises; and ``RegisterMoveCallback2`` only from 4.2 on, as in the real API;
* ``RestApiGet`` refused during initialization, as the real SDK does (error 2038).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PluginVersion = Literal["4.0", "5.0"]


class ChangeType:
    """``orthanc.ChangeType`` (``OrthancPluginChangeType``), values as in the SDK."""

    COMPLETED_SERIES = 0
    DELETED = 1
    NEW_CHILD_INSTANCE = 2
    NEW_INSTANCE = 3
    NEW_PATIENT = 4
    NEW_SERIES = 5
    NEW_STUDY = 6
    STABLE_PATIENT = 7
    STABLE_SERIES = 8
    STABLE_STUDY = 9
    ORTHANC_STARTED = 10
    ORTHANC_STOPPED = 11
    UPDATED_ATTACHMENT = 12
    UPDATED_METADATA = 13
    UPDATED_PEERS = 14
    UPDATED_MODALITIES = 15
    JOB_SUBMITTED = 16
    JOB_SUCCESS = 17
    JOB_FAILURE = 18


class ResourceType:
    """``orthanc.ResourceType`` (``OrthancPluginResourceType``)."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3
    NONE = 4


class InstanceOrigin:
    """``orthanc.InstanceOrigin`` (``OrthancPluginInstanceOrigin``)."""

    UNKNOWN = 1
    DICOM_PROTOCOL = 2
    REST_API = 3
    PLUGIN = 4
    LUA = 5
    WEB_DAV = 6


class ReceivedInstanceAction:
    """``orthanc.ReceivedInstanceAction`` (``OrthancPluginReceivedInstanceAction``)."""

    KEEP_AS_IS = 1
    MODIFY = 2
    DISCARD = 3


@dataclass(frozen=True)
class FakeDicomInstance:
    """``orthanc.DicomInstance`` as the C-STORE filter gets it."""

    remote_aet: str

    def GetInstanceRemoteAet(self) -> str:
        return self.remote_aet


@dataclass(frozen=True)
class Ingested:
    """What Orthanc did with one instance handed to :meth:`FakeOrthanc.ingest`.

    ``stored``: the bytes it would index (``None``: not indexed); ``dimse_status``: the C-STORE
    response status (C-STORE only); ``http_error``: the exception an HTTP upload failed with.
    """

    stored: bytes | None
    dimse_status: int | None = None
    http_error: BaseException | None = None


class OrthancException(Exception):
    """``orthanc.OrthancException``: ``args`` are (error code, description)."""


class CallbackCollected(AssertionError):
    """A registered callback was garbage collected: the real Orthanc would crash here."""


@dataclass
class RestOutput40:
    """``orthanc.RestOutput`` of plugin 4.0."""

    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def SendHttpStatus(self, status: int, *body: Any) -> None:
        if len(body) != 2 or not isinstance(body[0], str) or not isinstance(body[1], int):
            raise TypeError("SendHttpStatus() of plugin 4.0 takes (int, str, int)")
        data = body[0].encode("utf-8")
        if body[1] != len(data):
            raise ValueError("size does not match the body")
        self.status, self.body = status, data

    def AnswerBuffer(self, answer: bytes, mime_type: str) -> None:
        self.status, self.body = 200, bytes(answer)
        self.headers["Content-Type"] = mime_type

    def SetHttpHeader(self, key: str, value: str) -> None:
        self.headers[key] = value


@dataclass
class RestOutput50(RestOutput40):
    """``orthanc.RestOutput`` of plugin 4.2+ (5.0 on trixie)."""

    def SendHttpStatus(self, status: int, *body: Any) -> None:
        if len(body) != 1 or not isinstance(body[0], (bytes, bytearray)):
            raise TypeError("SendHttpStatus() of plugin 5.0 takes (int, bytes)")
        self.status, self.body = status, bytes(body[0])


class FakeOrthanc:
    """The module of Python plugin 4.0 (Debian bookworm). See :class:`FakeOrthanc50`."""

    version: PluginVersion = "4.0"
    ChangeType: type = ChangeType
    ResourceType: type = ResourceType
    InstanceOrigin: type = InstanceOrigin
    ReceivedInstanceAction: type = ReceivedInstanceAction
    OrthancException: type[Exception] = OrthancException

    def __init__(self, configuration: Mapping[str, Any] | None = None,
                 arguments: Sequence[str] = ()) -> None:
        self.configuration = dict(configuration or {})
        self.arguments = list(arguments)
        self.logs: list[tuple[str, str]] = []
        self.registrations: list[str] = []
        self._callbacks: dict[str, list[weakref.ReferenceType[Callable[..., Any]]]] = {}
        self.initializing = True
        #: The index: SOP Instance UID → stored file (``LookupInstance``, ``GetDicomForInstance``).
        self.instances: dict[str, bytes] = {}
        #: Series Instance UIDs the index holds (``LookupSeries``).
        self.series: set[str] = set()

    # --- logging, configuration -----------------------------------------------------------

    @staticmethod
    def _c_string(message: str) -> str:
        if "\0" in message:  # the real wrapper parses a C string and refuses the call
            raise TypeError("Bad types for the arguments (1 arguments expected)")
        return message

    def LogError(self, message: str) -> None:
        self.logs.append(("error", self._c_string(message)))

    def LogWarning(self, message: str) -> None:
        self.logs.append(("warning", self._c_string(message)))

    def LogInfo(self, message: str) -> None:
        self.logs.append(("info", self._c_string(message)))

    def GetConfiguration(self) -> str:
        return json.dumps(self.configuration)

    def GetCommandLineArgumentsCount(self) -> int:
        return len(self.arguments)

    def GetCommandLineArgument(self, index: int) -> str:
        return self.arguments[index]

    def RestApiGet(self, uri: str) -> bytes:
        if self.initializing:
            raise OrthancException(
                2038, "Plugin trying to call the database during its initialization")
        raise OrthancException(17, f"Unknown resource: {uri}")

    def LookupInstance(self, sop_instance_uid: str) -> str:
        if sop_instance_uid not in self.instances:
            raise OrthancException(17, "Unknown resource")
        return f"orthanc-{sop_instance_uid}"

    def LookupSeries(self, series_instance_uid: str) -> str:
        if series_instance_uid not in self.series:
            raise OrthancException(17, "Unknown resource")
        return f"orthanc-series-{series_instance_uid}"

    def GetDicomForInstance(self, orthanc_id: str) -> bytes:
        return self.instances[orthanc_id.removeprefix("orthanc-")]

    # --- registration -------------------------------------------------------------------

    def _register(self, name: str, *callbacks: Callable[..., Any]) -> None:
        if name in self._callbacks:
            raise RuntimeError(f"Can only register one callback with {name}")  # as the plugin does
        self._callbacks[name] = [weakref.ref(c) for c in callbacks]
        self.registrations.append(name)

    def RegisterOnChangeCallback(self, callback: Callable[[int, int, str], None]) -> None:
        self._register("RegisterOnChangeCallback", callback)

    def RegisterReceivedInstanceCallback(self, callback: Callable[..., Any]) -> None:
        self._register("RegisterReceivedInstanceCallback", callback)

    def RegisterIncomingCStoreInstanceFilter(self, callback: Callable[..., Any]) -> None:
        self._register("RegisterIncomingCStoreInstanceFilter", callback)

    def RegisterStorageArea(self, create: Callable[..., Any], read: Callable[..., Any],
                            remove: Callable[..., Any]) -> None:
        self._register("RegisterStorageArea", create, read, remove)

    def RegisterWorklistCallback(self, callback: Callable[..., Any]) -> None:
        self._register("RegisterWorklistCallback", callback)

    def RegisterFindCallback(self, callback: Callable[..., Any]) -> None:
        self._register("RegisterFindCallback", callback)

    def RegisterMoveCallback(self, callback: Callable[..., Any]) -> None:
        self._register("RegisterMoveCallback", callback)

    def callback(self, name: str, index: int = 0) -> Callable[..., Any]:
        """The callback registered with ``name``; raises :class:`CallbackCollected` if it died."""
        refs = self._callbacks.get(name)
        if not refs:
            raise KeyError(f"{name} was never registered")
        target = refs[index]()
        if target is None:
            raise CallbackCollected(f"the callback given to {name} was garbage collected")
        return target

    def fire_change(self, change_type: int, resource_type: int, resource_id: str) -> None:
        """What Orthanc's change thread does for one change."""
        self.initializing = False
        self.callback("RegisterOnChangeCallback")(change_type, resource_type, resource_id)

    def ingest(self, data: bytes, origin: int, remote_aet: str = "MODALITY") -> Ingested:
        """What Orthanc does with an incoming instance: the received-instance callback, then
        (C-STORE only, same thread, only if the instance was kept) the C-STORE filter."""
        self.initializing = False
        try:
            action, modified = self.callback("RegisterReceivedInstanceCallback")(data, origin)
        except Exception as error:  # Orthanc fails the upload (HTTP) or the C-STORE
            return Ingested(None, 0xC000 if origin == InstanceOrigin.DICOM_PROTOCOL else None,
                            error)
        if action == ReceivedInstanceAction.DISCARD:
            return Ingested(None, 0 if origin == InstanceOrigin.DICOM_PROTOCOL else None)
        kept = bytes(modified) if action == ReceivedInstanceAction.MODIFY else data
        if origin != InstanceOrigin.DICOM_PROTOCOL:
            return Ingested(kept)
        status = int(self.callback("RegisterIncomingCStoreInstanceFilter")(
            FakeDicomInstance(remote_aet)))
        return Ingested(kept if status == 0 else None, status)

    def rest_output(self) -> RestOutput40:
        return RestOutput40()


class FakeOrthanc50(FakeOrthanc):
    """The module of Python plugin 5.0 (Debian trixie, Orthanc 1.12.x)."""

    version: PluginVersion = "5.0"

    def RegisterMoveCallback2(self, callback: Callable[..., Any],
                              get_move_size: Callable[..., Any],
                              apply_move: Callable[..., Any],
                              free_move: Callable[..., Any]) -> None:
        self._register("RegisterMoveCallback2", callback, get_move_size, apply_move, free_move)

    def rest_output(self) -> RestOutput40:
        return RestOutput50()


def fake_orthanc(version: PluginVersion = "4.0", configuration: Mapping[str, Any] | None = None,
                 arguments: Sequence[str] = ()) -> FakeOrthanc:
    """A fake ``orthanc`` module of the given plugin version."""
    cls = FakeOrthanc50 if version == "5.0" else FakeOrthanc
    return cls(configuration, arguments)
