"""The audit rows of a STOW-RS request (archive_api.stow_audit): one per study and outcome."""

from __future__ import annotations

from archive_api.stow_audit import MAX_QUARANTINE_IDS, stored_studies, upload_events
from archive_api.stow_response import (CANNOT_UNDERSTAND, COERCED, DATASET_MISMATCH,
                                       PartOutcome)
from archive_audit.door_log import Patient
from archive_auth.principal import Principal

TECHNICIAN = Principal(kind="token", user_id=3, name="技师-1", permissions={},
                       public_id="tok-9")
KEY = Principal(kind="api-key", user_id=None, name="ris", permissions={}, public_id="k-2")


def _stored(index: int, study: str, warned: bool = False) -> PartOutcome:
    return PartOutcome(index, True, "1.2.840.10008.5.1.4.1.1.2", f"9.{index}", study, "5.6",
                       warning_reason=COERCED if warned else None)


def _failed(index: int, study: str | None, reason: int, kept: str | None = None) -> PartOutcome:
    return PartOutcome(index, False, None, f"9.{index}", study, None, failure_reason=reason,
                       quarantine_id=kept)


def test_one_row_per_study_and_outcome_with_who_and_the_patient() -> None:
    outcomes = [_stored(0, "1.1"), _failed(1, "1.1", DATASET_MISMATCH, "ab" * 32),
                _stored(2, "1.1", warned=True), _stored(3, "1.2"),
                _failed(4, None, CANNOT_UNDERSTAND)]
    assert stored_studies(outcomes) == ["1.1", "1.2"]
    rows = upload_events(outcomes, TECHNICIAN, tenant="zhen", client_ip="10.0.0.5",
                         resource="POST /dicom-web/studies",
                         patients={"1.1": Patient("P-1", "王^芳"), "1.2": None})
    assert [(r.study_uid, r.outcome, r.detail["count"]) for r in rows] == [
        (None, "failure", 1), ("1.1", "success", 2), ("1.1", "failure", 1),
        ("1.2", "success", 1)]
    failed_none, stored_11, failed_11, stored_12 = rows
    assert {(r.action, r.actor, r.actor_kind, r.session, r.tenant, r.source_ip, r.resource)
            for r in rows} == {("upload", "技师-1", "user", "tok-9", "zhen", "10.0.0.5",
                                "POST /dicom-web/studies")}
    assert (stored_11.patient_id, stored_11.patient_name) == ("P-1", "王^芳")
    assert stored_11.detail == {"source": "stow-rs", "count": 2, "warned": 1}
    assert failed_11.detail == {"source": "stow-rs", "count": 1,
                                "failureReasons": {"A900": 1}, "quarantined": ["ab" * 32]}
    assert failed_11.patient_id == "P-1"  # the study is known: its patient is too
    assert failed_none.detail["failureReasons"] == {"C000": 1}
    assert failed_none.patient_id is None and stored_12.patient_id is None


def test_keys_and_unknown_senders_are_named_as_such() -> None:
    [by_key] = upload_events([_stored(0, "1.3")], KEY, tenant="default", client_ip=None,
                             resource="POST /dicom-web/studies/1.3", patients={})
    assert (by_key.actor, by_key.actor_kind, by_key.session) == ("ris", "api-key", "k-2")
    [nobody] = upload_events([_stored(0, "1.3")], None, tenant="default", client_ip=None,
                             resource="POST /dicom-web/studies", patients={})
    assert (nobody.actor, nobody.actor_kind, nobody.session) == ("anonymous", "anonymous", None)


def test_quarantine_ids_are_capped() -> None:
    outcomes = [_failed(i, "1.4", DATASET_MISMATCH, f"{i:064x}") for i in range(80)]
    [row] = upload_events(outcomes, TECHNICIAN, tenant="default", client_ip=None,
                          resource="POST /dicom-web/studies", patients={})
    assert row.detail["count"] == 80 and len(row.detail["quarantined"]) == MAX_QUARANTINE_IDS
