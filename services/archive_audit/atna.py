"""Audit rows as DICOM audit messages (PS3.15 Annex A.5, the schema derived from RFC 3881), for
an audit record repository or an IHE ATNA export.

Each row becomes one ``AuditMessage``: ``EventIdentification`` (EventID and EventTypeCode from the
DCM code system, EventActionCode, EventOutcomeIndicator), an ``ActiveParticipant`` for whoever
acted and one for this archive, ``AuditSourceIdentification``, and a
``ParticipantObjectIdentification`` for the patient (type 1, role 1, ID type
``(2, RFC-3881, "Patient Number")``) and the study (type 2, role 3, ID type
``(110180, DCM, "Study Instance UID")``) when the row names them. Coded values use the schema's
``csd-code``/``codeSystemName``/``originalText`` attributes (PS3.15 2016 onward).

Which message each action is (PS3.15 A.5.3): login, login-failed, logout, lockout → User
Authentication (110114) with Login/Logout (110122/110123); view → DICOM Instances Accessed
(110103, R), or Query (110112, E) when no study is named (a QIDO search); download → DICOM
Instances Transferred (110104, R; the archive is the source); upload → the same with C (the
archive is the destination); share → Export (110106); change → Instances Accessed (U), or Patient
Record (110110, U) for a patient without a study; restore → Instances Accessed (C); delete,
purge → DICOM Study Deleted (110105, D); config-change, user-admin, access-denied → Security
Alert (110113, E) with Software Configuration (110131), User Security Attributes Changed
(110137), Use of Restricted Function (110132); audit-read (a search, export or check of this
trail) → Audit Log Used (110101, R). The DIMSE rows read from Orthanc's log: dicom-store → DICOM Instances Transferred (C, the archive
the destination); dicom-find → Query; dicom-get, dicom-move → Begin Transferring DICOM
Instances (110102, R; Orthanc's log says what it starts to send, not how the sub-operations
ended), the archive the source and the caller (C-GET) or the C-MOVE's destination AE (its own
participant) the destination; dicom-refused → Security Alert with Node Authentication (a
refused association) or Use of Restricted Function (a refused request); dicom-echo →
Application Activity.

Outcome: success 0, failure 4 (minor failure), denied 8 (serious failure); a lockout is 12
(major failure: "user account disabled due to excessive invalid log-on attempts").

Several messages are wrapped in an ``AuditMessages`` element; that container is ours (the
standard defines one message per syslog record), each child is a schema-valid ``AuditMessage``.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timezone

from .records import AuditRecord

MEDIA_TYPE = "application/xml; charset=utf-8"
CONTAINER = "AuditMessages"


@dataclass(frozen=True)
class Code:
    """A coded value: code, code system name, meaning (``originalText``)."""

    code: str
    system: str
    meaning: str


# EventID (PS3.16 CID 400 "Audit Event ID")
APPLICATION_ACTIVITY = Code("110100", "DCM", "Application Activity")
AUDIT_LOG_USED = Code("110101", "DCM", "Audit Log Used")
BEGIN_TRANSFERRING = Code("110102", "DCM", "Begin Transferring DICOM Instances")
INSTANCES_ACCESSED = Code("110103", "DCM", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = Code("110104", "DCM", "DICOM Instances Transferred")
STUDY_DELETED = Code("110105", "DCM", "DICOM Study Deleted")
EXPORT = Code("110106", "DCM", "Export")
PATIENT_RECORD = Code("110110", "DCM", "Patient Record")
QUERY = Code("110112", "DCM", "Query")
SECURITY_ALERT = Code("110113", "DCM", "Security Alert")
USER_AUTHENTICATION = Code("110114", "DCM", "User Authentication")
# EventTypeCode (CID 401 "Audit Event Type Code")
LOGIN = Code("110122", "DCM", "Login")
LOGOUT = Code("110123", "DCM", "Logout")
NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")
SOFTWARE_CONFIGURATION = Code("110131", "DCM", "Software Configuration")
USE_OF_RESTRICTED_FUNCTION = Code("110132", "DCM", "Use of Restricted Function")
USER_SECURITY_ATTRIBUTES_CHANGED = Code("110137", "DCM", "User security Attributes Changed")
# RoleIDCode (CID 402 "Audit Active Participant Role ID Code")
APPLICATION = Code("110150", "DCM", "Application")
DESTINATION = Code("110152", "DCM", "Destination Role ID")
SOURCE = Code("110153", "DCM", "Source Role ID")
# ParticipantObjectIDTypeCode
PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
URI = Code("12", "RFC-3881", "URI")
STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")
SOP_CLASS_UID = Code("110181", "DCM", "SOP Class UID")
# AuditSourceTypeCode
APPLICATION_SERVER = Code("4", "DCM", "Application Server process tier in a multi-tier system")

#: Study Root Query/Retrieve Information Model - FIND: what a QIDO-RS search stands for.
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
OUTCOMES = {"success": "0", "failure": "4", "denied": "8"}
LOCKOUT_OUTCOME = "12"
#: NetworkAccessPointTypeCode: 2 = IP address.
IP_ADDRESS = "2"
#: Characters XML 1.0 cannot hold (C0 controls but tab, LF, CR; surrogates; U+FFFE/U+FFFF),
#: which DICOM strings may carry (ISO 2022 escapes in patient names).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class AuditSource:
    """Who reports: ``AuditSourceID`` (this archive) and the default enterprise site (the
    row's tenant is used when it has one)."""

    source_id: str = "regional-archive"
    enterprise_site: str | None = None


@dataclass(frozen=True)
class EventKind:
    """How one row is told: EventID, EventActionCode, EventTypeCodes, and the participants'
    roles in a transfer (who sent, who received), if it is one."""

    event_id: Code
    action: str
    types: tuple[Code, ...] = ()
    actor_role: Code | None = None
    archive_role: Code = APPLICATION


def _sent(event_id: Code, action: str) -> EventKind:
    """The archive sent the instances to the actor."""
    return EventKind(event_id, action, actor_role=DESTINATION, archive_role=SOURCE)


def _received(event_id: Code, action: str) -> EventKind:
    """The actor sent the instances to the archive."""
    return EventKind(event_id, action, actor_role=SOURCE, archive_role=DESTINATION)


def _dicom(record: AuditRecord) -> EventKind:
    """The rows of Orthanc's DIMSE requests (``archive_audit.dicom_log``)."""
    action = record.action
    if action == "dicom-store":
        return _received(INSTANCES_TRANSFERRED, "C")
    if action == "dicom-find":
        return EventKind(QUERY, "E")
    if action == "dicom-get":
        return _sent(BEGIN_TRANSFERRING, "R")
    if action == "dicom-move":  # the destination is another participant (see _destination)
        return EventKind(BEGIN_TRANSFERRING, "R", archive_role=SOURCE)
    if action == "dicom-refused":
        refused_association = record.detail.get("operation") == "A-ASSOCIATE"
        return EventKind(SECURITY_ALERT, "E", (
            NODE_AUTHENTICATION if refused_association else USE_OF_RESTRICTED_FUNCTION,))
    return EventKind(APPLICATION_ACTIVITY, "E")  # C-ECHO: PS3.15 has no event of its own


def _destination(message: ET.Element, record: AuditRecord) -> None:
    """A C-MOVE's destination AE, where the archive sends the instances."""
    aet = record.detail.get("destination_aet")
    if record.action != "dicom-move" or not aet:
        return
    participant = ET.SubElement(message, "ActiveParticipant", {
        "UserID": str(aet), "AlternativeUserID": f"AETITLE={aet}", "UserIsRequestor": "false"})
    _coded(participant, "RoleIDCode", DESTINATION)


def kind_of(record: AuditRecord) -> EventKind:
    """The message a row becomes (see the module docstring)."""
    action = record.action
    if action in ("login", "login-failed", "lockout"):
        return EventKind(USER_AUTHENTICATION, "E", (LOGIN,))
    if action == "logout":
        return EventKind(USER_AUTHENTICATION, "E", (LOGOUT,))
    if action == "view":
        if record.study_uid is None:
            return EventKind(QUERY, "E")
        return EventKind(INSTANCES_ACCESSED, "R")
    if action == "download":
        return _sent(INSTANCES_TRANSFERRED, "R")
    if action == "upload":
        return _received(INSTANCES_TRANSFERRED, "C")
    if action == "share":
        return _sent(EXPORT, "R")
    if action == "change":
        if record.study_uid is None and record.patient_id is not None:
            return EventKind(PATIENT_RECORD, "U")
        return EventKind(INSTANCES_ACCESSED, "U")
    if action == "restore":
        return EventKind(INSTANCES_ACCESSED, "C")
    if action in ("delete", "purge"):
        return EventKind(STUDY_DELETED, "D")
    if action == "config-change":
        return EventKind(SECURITY_ALERT, "E", (SOFTWARE_CONFIGURATION,))
    if action == "user-admin":
        return EventKind(SECURITY_ALERT, "E", (USER_SECURITY_ATTRIBUTES_CHANGED,))
    if action == "access-denied":
        return EventKind(SECURITY_ALERT, "E", (USE_OF_RESTRICTED_FUNCTION,))
    if action.startswith("dicom-"):
        return _dicom(record)
    if action == "audit-read":
        return EventKind(AUDIT_LOG_USED, "R")
    return EventKind(APPLICATION_ACTIVITY, "E")


def _coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(parent, tag, {"csd-code": code.code, "codeSystemName": code.system,
                                       "originalText": code.meaning})


def _outcome(record: AuditRecord) -> str:
    if record.action == "lockout":
        return LOCKOUT_OUTCOME
    return OUTCOMES.get(record.outcome, "4")


def _actor(message: ET.Element, record: AuditRecord, role: Code | None) -> None:
    attributes = {"UserID": record.actor or "anonymous"}
    if record.actor_kind == "dicom":
        attributes["AlternativeUserID"] = f"AETITLE={record.actor}"
    elif record.session:
        attributes["AlternativeUserID"] = f"session={record.session}"
    attributes["UserName"] = record.actor or "anonymous"
    attributes["UserIsRequestor"] = "true"
    if record.source_ip:
        attributes["NetworkAccessPointID"] = record.source_ip
        attributes["NetworkAccessPointTypeCode"] = IP_ADDRESS
    participant = ET.SubElement(message, "ActiveParticipant", attributes)
    if role is not None:
        _coded(participant, "RoleIDCode", role)


def _archive(message: ET.Element, source: AuditSource, role: Code) -> None:
    participant = ET.SubElement(message, "ActiveParticipant", {
        "UserID": source.source_id, "UserIsRequestor": "false"})
    _coded(participant, "RoleIDCode", role)


def _objects(message: ET.Element, record: AuditRecord, kind: EventKind) -> None:
    if record.patient_id is not None:
        patient = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": record.patient_id, "ParticipantObjectTypeCode": "1",
            "ParticipantObjectTypeCodeRole": "1"})
        _coded(patient, "ParticipantObjectIDTypeCode", PATIENT_NUMBER)
        if record.patient_name:
            ET.SubElement(patient, "ParticipantObjectName").text = record.patient_name
    if record.study_uid is not None:
        study = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": record.study_uid, "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3"})
        _coded(study, "ParticipantObjectIDTypeCode", STUDY_INSTANCE_UID)
    elif kind.event_id == QUERY:
        query = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": str(record.detail.get("sop_class_uid") or STUDY_ROOT_FIND),
            "ParticipantObjectTypeCode": "2", "ParticipantObjectTypeCodeRole": "3"})
        _coded(query, "ParticipantObjectIDTypeCode", SOP_CLASS_UID)
        text = (record.resource or "").encode("utf-8")
        ET.SubElement(query, "ParticipantObjectQuery").text = base64.b64encode(text).decode()
    if kind.event_id == SECURITY_ALERT and record.resource:
        subject = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": record.resource, "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "13"})
        _coded(subject, "ParticipantObjectIDTypeCode", URI)


def _clean(root: ET.Element) -> ET.Element:
    """Every text and attribute value with what XML cannot hold replaced by U+FFFD."""
    for element in root.iter():
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
        for name, value in element.attrib.items():
            element.set(name, _NOT_XML.sub("\ufffd", value))
    return root


def message(record: AuditRecord, source: AuditSource) -> ET.Element:
    """One row as an ``AuditMessage`` element."""
    kind = kind_of(record)
    root = ET.Element("AuditMessage")
    at = record.at.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    event = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": kind.action, "EventDateTime": at.replace("+00:00", "Z"),
        "EventOutcomeIndicator": _outcome(record)})
    _coded(event, "EventID", kind.event_id)
    for code in kind.types:
        _coded(event, "EventTypeCode", code)
    if record.outcome != "success":
        ET.SubElement(event, "EventOutcomeDescription").text = (
            f"{record.action} {record.outcome}")
    _actor(root, record, kind.actor_role)
    _archive(root, source, kind.archive_role)
    _destination(root, record)
    site = record.tenant or source.enterprise_site
    identification = {"AuditSourceID": source.source_id}
    if site:
        identification["AuditEnterpriseSiteID"] = site
    audit_source = ET.SubElement(root, "AuditSourceIdentification", identification)
    _coded(audit_source, "AuditSourceTypeCode", APPLICATION_SERVER)
    _objects(root, record, kind)
    return _clean(root)


def document(records: Iterable[AuditRecord], source: AuditSource) -> Iterator[bytes]:
    """The rows as one XML document (``AuditMessages`` holding one ``AuditMessage`` each),
    in UTF-8 pieces to stream."""
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<{CONTAINER}>\n'.encode()
    for record in records:
        yield ET.tostring(message(record, source), encoding="utf-8", xml_declaration=False)
        yield b"\n"
    yield f"</{CONTAINER}>\n".encode()
