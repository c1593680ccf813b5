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

Exceptions never cross into Orthanc: the callbacks installed here log and swallow whatever the
dispatcher raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import RegistrationError
from ..events import ChangeEvent, rest_name
from .sdk import OrthancSdk, RestOutput

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


class SdkAdapter:
    """The runtime's handle on Orthanc: callback registration, configuration, HTTP answers."""

    def __init__(self, sdk: OrthancSdk) -> None:
        self._sdk = sdk
        self._change_names = enum_names(sdk.ChangeType)
        self._resource_names = enum_names(sdk.ResourceType)
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

    def on_change(self, dispatch: Callable[[ChangeEvent], None]) -> None:
        """Register Orthanc's change callback; ``dispatch`` receives named events.

        The Python plugin queues change events and calls this from its own thread, one at a
        time, in order (orthanc-python 3.1+).
        """

        def on_change_callback(change_type: int, resource_type: int, resource_id: str) -> None:
            try:
                dispatch(self.change_event(change_type, resource_type, resource_id))
            except Exception:  # the boundary: nothing propagates into Orthanc
                log.exception("change callback failed (change %r, resource %r %r)",
                              change_type, resource_type, resource_id)

        self._register(CallbackKind.ON_CHANGE, on_change_callback)

    def change_event(self, change_type: int, resource_type: int, resource_id: str) -> ChangeEvent:
        return ChangeEvent(
            change_type=self._change_names.get(int(change_type), f"Unknown{int(change_type)}"),
            resource_type=self._resource_names.get(int(resource_type),
                                                   f"Unknown{int(resource_type)}"),
            resource_id=str(resource_id),
        )

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
