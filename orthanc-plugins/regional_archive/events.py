"""The events Orthanc hands the plugin, as plain values with names instead of SDK integers.

The SDK gives integers (``OrthancPluginChangeType``, ``OrthancPluginResourceType`` of
``OrthancCPlugin.h``; ``orthanc.ChangeType.STABLE_STUDY`` in Python). We name them as Orthanc's
REST API does in ``GET /changes`` (``StableStudy``, ``Study``): the member ``STABLE_STUDY`` of the
SDK becomes ``StableStudy`` (:func:`rest_name`). These names are what the outbox stores, so a
consumer reads the vocabulary Orthanc documents, never numbers that belong to one SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ChangeType(StrEnum):
    """``OrthancPluginChangeType``: what happened (member: SDK name; value: REST name)."""

    COMPLETED_SERIES = "CompletedSeries"
    DELETED = "Deleted"
    NEW_CHILD_INSTANCE = "NewChildInstance"
    NEW_INSTANCE = "NewInstance"
    NEW_PATIENT = "NewPatient"
    NEW_SERIES = "NewSeries"
    NEW_STUDY = "NewStudy"
    STABLE_PATIENT = "StablePatient"
    STABLE_SERIES = "StableSeries"
    STABLE_STUDY = "StableStudy"
    ORTHANC_STARTED = "OrthancStarted"
    ORTHANC_STOPPED = "OrthancStopped"
    UPDATED_ATTACHMENT = "UpdatedAttachment"
    UPDATED_METADATA = "UpdatedMetadata"
    UPDATED_PEERS = "UpdatedPeers"
    UPDATED_MODALITIES = "UpdatedModalities"
    JOB_SUBMITTED = "JobSubmitted"
    JOB_SUCCESS = "JobSuccess"
    JOB_FAILURE = "JobFailure"


class ResourceType(StrEnum):
    """``OrthancPluginResourceType``: the level of the DICOM model a change is about."""

    PATIENT = "Patient"
    STUDY = "Study"
    SERIES = "Series"
    INSTANCE = "Instance"
    NONE = "None"


def rest_name(sdk_name: str) -> str:
    """``STABLE_STUDY`` → ``StableStudy``: an SDK enumeration member, spelt as in the REST API."""
    return "".join(word.capitalize() for word in sdk_name.split("_"))


@dataclass(frozen=True)
class ChangeEvent:
    """One call of Orthanc's change callback (``OrthancPluginOnChangeCallback``).

    ``change_type`` and ``resource_type`` are REST names (:class:`ChangeType`,
    :class:`ResourceType`); a value this code does not know yet (a newer Orthanc) arrives as
    ``Unknown<number>`` rather than being dropped.
    ``resource_id`` is Orthanc's identifier of the resource (empty for server-wide changes).
    """

    change_type: str
    resource_type: str
    resource_id: str
