"""The events Orthanc hands the plugin, as plain values with names instead of SDK integers.

Names are those of the Python plugin's enumerations (``orthanc.ChangeType.STABLE_STUDY``,
``orthanc.ResourceType.STUDY``), which mirror ``OrthancPluginChangeType`` and
``OrthancPluginResourceType`` of the C SDK (``OrthancCPlugin.h``). They are what the outbox
stores, so a consumer reads ``STABLE_STUDY``/``STUDY`` rather than numbers that belong to one SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChangeType(StrEnum):
    """``OrthancPluginChangeType``: what happened (the member's value is its SDK name)."""

    COMPLETED_SERIES = "COMPLETED_SERIES"
    DELETED = "DELETED"
    NEW_CHILD_INSTANCE = "NEW_CHILD_INSTANCE"
    NEW_INSTANCE = "NEW_INSTANCE"
    NEW_PATIENT = "NEW_PATIENT"
    NEW_SERIES = "NEW_SERIES"
    NEW_STUDY = "NEW_STUDY"
    STABLE_PATIENT = "STABLE_PATIENT"
    STABLE_SERIES = "STABLE_SERIES"
    STABLE_STUDY = "STABLE_STUDY"
    ORTHANC_STARTED = "ORTHANC_STARTED"
    ORTHANC_STOPPED = "ORTHANC_STOPPED"
    UPDATED_ATTACHMENT = "UPDATED_ATTACHMENT"
    UPDATED_METADATA = "UPDATED_METADATA"
    UPDATED_PEERS = "UPDATED_PEERS"
    UPDATED_MODALITIES = "UPDATED_MODALITIES"
    JOB_SUBMITTED = "JOB_SUBMITTED"
    JOB_SUCCESS = "JOB_SUCCESS"
    JOB_FAILURE = "JOB_FAILURE"


class ResourceType(StrEnum):
    """``OrthancPluginResourceType``: the level of the DICOM model a change is about."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    INSTANCE = "INSTANCE"
    NONE = "NONE"


@dataclass(frozen=True)
class ChangeEvent:
    """One call of Orthanc's change callback (``OrthancPluginOnChangeCallback``).

    ``change_type`` and ``resource_type`` are SDK names; a value this code does not know yet
    (a newer Orthanc) arrives as ``UNKNOWN_<number>`` rather than being dropped.
    ``resource_id`` is Orthanc's identifier of the resource (empty for server-wide changes).
    """

    change_type: str
    resource_type: str
    resource_id: str
