"""CSV and DICOM audit message (ATNA) exports of audit rows, read back as their readers do."""

from __future__ import annotations

import base64
import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta, timezone
from typing import Any

import pytest

from archive_audit import atna, export_csv
from archive_audit.records import AuditRecord
from tests.unit._audit_env import NAME, T0


def record(**extra: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "id": 7, "at": T0, "action": "view", "outcome": "success", "actor": "li.lei",
        "actor_kind": "user", "source_ip": "10.1.2.3", "tenant": "hosp-a", "unit": None,
        "patient_id": "P-001", "patient_name": NAME, "study_uid": "1.2.840.1",
        "resource": "/dicom-web/studies/1.2.840.1/series", "session": "s-1",
        "detail": {"count": 12, "备注": "中文"}, "prev_hash": "0" * 64, "hash": "a" * 64}
    values.update(extra)
    return AuditRecord(**values)


# --- CSV -------------------------------------------------------------------------------------


def test_csv_starts_with_bom_and_chinese_headers() -> None:
    data = b"".join(export_csv.encoded([record(), record(id=8, actor="王医生")]))
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["编号 (ID)", "时间 UTC (Time, UTC)", "操作 (Action)"]
    assert len(rows) == 3 and all(len(r) == len(export_csv.COLUMNS) for r in rows)
    header = rows[0]
    first = dict(zip(header, rows[1]))
    assert first["患者姓名 (Patient name)"] == NAME
    assert first["操作说明 (Action, described)"] == "查看 view"
    assert first["时间 UTC (Time, UTC)"] == "2026-12-02 08:00:00"
    assert '"备注": "中文"' in first["详情 (Detail)"]
    assert dict(zip(header, rows[2]))["操作者 (Operator)"] == "王医生"


def test_csv_gbk_reader_would_fail_but_bom_names_utf8() -> None:
    """Excel picks UTF-8 because of the BOM; without it the bytes are not GBK text."""
    data = b"".join(export_csv.encoded([record()]))
    assert data[:3] == export_csv.BOM.encode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        data[3:].decode("gbk")


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)"])
def test_csv_cells_that_look_like_formulas_are_quoted(value: str) -> None:
    cells = export_csv.cells(record(patient_name=value))
    assert cells[[n for n, _ in export_csv.COLUMNS].index("patient_name")] == "'" + value


def test_csv_of_nothing_is_the_header_only() -> None:
    text = b"".join(export_csv.encoded([])).decode("utf-8-sig")
    assert text.count("\r\n") == 1 and text.startswith("编号 (ID)")


# --- ATNA ------------------------------------------------------------------------------------


def parse(records: list[AuditRecord]) -> ET.Element:
    data = b"".join(atna.document(records, atna.AuditSource("archive-test", "region")))
    return ET.fromstring(data)


def code(element: ET.Element | None) -> tuple[str | None, str | None, str | None]:
    assert element is not None
    return (element.get("csd-code"), element.get("codeSystemName"), element.get("originalText"))


def test_view_is_instances_accessed_with_patient_and_study() -> None:
    root = parse([record()])
    assert root.tag == atna.CONTAINER and len(root) == 1
    message = root[0]
    assert message.tag == "AuditMessage"
    event = message.find("EventIdentification")
    assert event is not None
    assert event.get("EventActionCode") == "R" and event.get("EventOutcomeIndicator") == "0"
    assert event.get("EventDateTime") == "2026-12-02T08:00:00.000Z"
    assert code(event.find("EventID")) == ("110103", "DCM", "DICOM Instances Accessed")
    actor, archive = message.findall("ActiveParticipant")
    assert actor.get("UserID") == "li.lei" and actor.get("UserIsRequestor") == "true"
    assert actor.get("NetworkAccessPointID") == "10.1.2.3"
    assert actor.get("NetworkAccessPointTypeCode") == "2"
    assert archive.get("UserID") == "archive-test" and archive.get("UserIsRequestor") == "false"
    source = message.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditSourceID") == "archive-test"
    assert source.get("AuditEnterpriseSiteID") == "hosp-a"
    assert code(source.find("AuditSourceTypeCode"))[0] == "4"
    patient, study = message.findall("ParticipantObjectIdentification")
    assert (patient.get("ParticipantObjectID"), patient.get("ParticipantObjectTypeCode"),
            patient.get("ParticipantObjectTypeCodeRole")) == ("P-001", "1", "1")
    assert code(patient.find("ParticipantObjectIDTypeCode")) == ("2", "RFC-3881",
                                                                  "Patient Number")
    assert patient.findtext("ParticipantObjectName") == NAME
    assert (study.get("ParticipantObjectID"), study.get("ParticipantObjectTypeCode"),
            study.get("ParticipantObjectTypeCodeRole")) == ("1.2.840.1", "2", "3")
    assert code(study.find("ParticipantObjectIDTypeCode")) == ("110180", "DCM",
                                                                "Study Instance UID")


@pytest.mark.parametrize("action, outcome, event_id, action_code, indicator, type_code", [
    ("login", "success", "110114", "E", "0", "110122"),
    ("login-failed", "failure", "110114", "E", "4", "110122"),
    ("lockout", "denied", "110114", "E", "12", "110122"),
    ("logout", "success", "110114", "E", "0", "110123"),
    ("download", "success", "110104", "R", "0", None),
    ("upload", "success", "110104", "C", "0", None),
    ("share", "success", "110106", "R", "0", None),
    ("change", "success", "110103", "U", "0", None),
    ("restore", "success", "110103", "C", "0", None),
    ("delete", "success", "110105", "D", "0", None),
    ("purge", "failure", "110105", "D", "4", None),
    ("config-change", "success", "110113", "E", "0", "110131"),
    ("user-admin", "success", "110113", "E", "0", "110137"),
    ("access-denied", "denied", "110113", "E", "8", "110132"),
    ("audit-read", "success", "110101", "R", "0", None),
])
def test_each_action_is_its_message(action: str, outcome: str, event_id: str,
                                    action_code: str, indicator: str,
                                    type_code: str | None) -> None:
    event = parse([record(action=action, outcome=outcome)])[0].find("EventIdentification")
    assert event is not None
    assert code(event.find("EventID"))[:2] == (event_id, "DCM")
    assert event.get("EventActionCode") == action_code
    assert event.get("EventOutcomeIndicator") == indicator
    if type_code is None:
        assert event.find("EventTypeCode") is None
    else:
        assert code(event.find("EventTypeCode"))[0] == type_code
    if outcome != "success":
        assert event.findtext("EventOutcomeDescription") == f"{action} {outcome}"


def test_transfer_roles_say_who_sent() -> None:
    download = parse([record(action="download")])[0].findall("ActiveParticipant")
    assert [code(p.find("RoleIDCode"))[0] for p in download] == ["110152", "110153"]
    upload = parse([record(action="upload")])[0].findall("ActiveParticipant")
    assert [code(p.find("RoleIDCode"))[0] for p in upload] == ["110153", "110152"]


def test_search_without_study_is_a_query_with_the_query_text() -> None:
    message = parse([record(study_uid=None, patient_id=None,
                            resource="/dicom-web/studies?PatientName=王*")])[0]
    event = message.find("EventIdentification")
    assert event is not None and code(event.find("EventID"))[0] == "110112"
    (query,) = message.findall("ParticipantObjectIdentification")
    assert query.get("ParticipantObjectID") == atna.STUDY_ROOT_FIND
    assert code(query.find("ParticipantObjectIDTypeCode"))[0] == "110181"
    text = query.findtext("ParticipantObjectQuery")
    assert text is not None and base64.b64decode(text).decode() == (
        "/dicom-web/studies?PatientName=王*")


@pytest.mark.parametrize("action, event_id", [
    ("dicom-find", "110112"), ("dicom-store", "110104"), ("dicom-move", "110102"),
    ("dicom-get", "110102"), ("dicom-echo", "110100")])
def test_dimse_by_operation(action: str, event_id: str) -> None:
    message = parse([record(action=action, actor="CT_ROOM_1", actor_kind="dicom")])[0]
    assert code(message.find("EventIdentification/EventID"))[0] == event_id
    assert message.findall("ActiveParticipant")[0].get("AlternativeUserID") == "AETITLE=CT_ROOM_1"


def test_refused_association_is_node_authentication_alert() -> None:
    event = parse([record(action="dicom-refused", outcome="denied", actor_kind="dicom",
                          study_uid=None, patient_id=None,
                          detail={"operation": "A-ASSOCIATE"})])[0].find("EventIdentification")
    assert event is not None and code(event.find("EventID"))[0] == "110113"
    assert code(event.find("EventTypeCode"))[0] == "110126"


def test_text_xml_cannot_hold_is_replaced_and_many_rows_parse() -> None:
    root = parse([record(patient_name="\x1b$BLi\x00"), record(id=8, tenant=None)])
    assert len(root) == 2
    assert root[0].findtext("ParticipantObjectIdentification/ParticipantObjectName") == (
        "\ufffd$BLi\ufffd")
    source = root[1].find("AuditSourceIdentification")
    assert source is not None and source.get("AuditEnterpriseSiteID") == "region"


def test_event_time_is_utc() -> None:
    shanghai = T0.replace(hour=16).astimezone(timezone(timedelta(hours=8)))
    event = parse([record(at=shanghai)])[0].find("EventIdentification")
    assert event is not None and event.get("EventDateTime") == "2026-12-02T16:00:00.000Z"
