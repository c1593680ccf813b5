"""What the ingest hooks see and decide, as plain values (no ``orthanc`` import).

Orthanc hands every instance it is about to index, from every way in (C-STORE, REST
``POST /instances``, a plugin such as DICOMweb's STOW-RS, Lua, WebDAV), to one received-instance
callback, with its bytes and its origin (``OrthancPluginInstanceOrigin``). A handler answers with
an :class:`IngestDecision`: keep the bytes, replace them (a declared, lossless repair), or divert
them away from the index (the ingest gate's quarantine) with the DICOM status the sender gets.

Diverting is two steps because of C-STORE: the received-instance callback does not know the
calling AE title, Orthanc's C-STORE filter, called next on the same thread, does, and only the
filter can answer the modality with a status of our choice. So a diversion carries a
``commit`` that the adapter calls where the sender's identity is known (at once for HTTP and
plugins, in the filter for C-STORE); ``commit`` writes the instance away and returns the status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum


class InstanceOrigin(StrEnum):
    """``OrthancPluginInstanceOrigin``: by which way an instance came in."""

    UNKNOWN = "Unknown"
    DICOM_PROTOCOL = "DicomProtocol"
    REST_API = "RestApi"
    PLUGIN = "Plugin"
    LUA = "Lua"
    WEB_DAV = "WebDav"


@dataclass(frozen=True)
class Sender:
    """Who sent an instance, as far as Orthanc tells: the calling AE title for C-STORE."""

    calling_aet: str | None = None


#: DICOM statuses a diversion answers with (PS3.4 B.2.3, PS3.7 C.4.2).
#: Warning "Data Set does not match SOP Class": the instance is kept (in quarantine), so the
#: modality must not send it again, and its operator sees that something was wrong with it.
STATUS_QUARANTINED = 0xB007
#: Failure "Out of Resources": nothing was kept; the sender should try again later.
STATUS_OUT_OF_RESOURCES = 0xA700


def is_failure(status: int) -> bool:
    """A DICOM status the sender must treat as "not stored" (0xA…, 0xC…; PS3.7 C)."""
    return status != 0 and not 0xB000 <= status <= 0xBFFF


class IngestAction(Enum):
    KEEP = "keep"
    REPLACE = "replace"
    DIVERT = "divert"


@dataclass(frozen=True)
class ReceivedInstance:
    data: bytes
    origin: InstanceOrigin


def _no_commit(sender: Sender) -> int:
    return STATUS_OUT_OF_RESOURCES


@dataclass(frozen=True)
class IngestDecision:
    """A handler's answer. ``data``: the replacement bytes (REPLACE). ``commit``: for DIVERT,
    called once with the sender; it stores the instance away and returns the DICOM status."""

    action: IngestAction
    data: bytes | None = None
    commit: Callable[[Sender], int] = field(default=_no_commit)
    reason: str = ""

    @classmethod
    def keep(cls) -> "IngestDecision":
        return KEEP

    @classmethod
    def replace(cls, data: bytes, reason: str) -> "IngestDecision":
        return cls(IngestAction.REPLACE, data=data, reason=reason)

    @classmethod
    def divert(cls, commit: Callable[[Sender], int], reason: str) -> "IngestDecision":
        return cls(IngestAction.DIVERT, commit=commit, reason=reason)


KEEP = IngestDecision(IngestAction.KEEP)

#: Called once per received instance; returns what to do with it.
ReceivedInstanceHandler = Callable[[ReceivedInstance], IngestDecision]
