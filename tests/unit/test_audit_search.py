"""Searching the audit trail on a real migrated SQLite control database."""

from __future__ import annotations

from datetime import timedelta, timezone
from datetime import datetime

import pytest

from archive_audit.chain import AuditLog
from archive_audit.events import AuditEvent
from archive_audit.search import AuditFilter, FilterError, iterate
from tests.unit._audit_env import (T0, ManualClock, audit, clock,  # noqa: F401
                                   control_template, engine, view)


@pytest.fixture()
def filled(audit: AuditLog, clock: ManualClock) -> AuditLog:
    events = [
        view(actor="Li.Lei", patient_id="P-001", patient_name="王^小明", study_uid="1.2.1"),
        view(actor="han.meimei", patient_id="P-002", patient_name="WANG^XIAOMING",
             study_uid="1.2.2", tenant="hosp-b", unit="u-7"),
        AuditEvent("download", "denied", "li.lei", "user", tenant="hosp-a", study_uid="1.2.1",
                   patient_id="P-001", patient_name="王^小明"),
        AuditEvent("login-failed", "failure", "张三", "user", source_ip="10.9.9.9"),
        view(actor="ris", actor_kind="api-key", patient_id="100%_A", patient_name="赵^六"),
    ]
    for event in events:
        audit.record(event)
        clock.advance(60)
    return audit


def _actors(audit: AuditLog, **criteria: object) -> list[str]:
    return [r.actor for r in audit.search(AuditFilter(**criteria)).items]  # type: ignore[arg-type]


def test_newest_first_with_total_and_paging(filled: AuditLog) -> None:
    page = filled.search(AuditFilter(limit=2, offset=1))
    assert page.total == 5 and (page.limit, page.offset) == (2, 1)
    assert [r.actor for r in page.items] == ["张三", "li.lei"]
    assert [r.id for r in filled.search(AuditFilter()).items] == [5, 4, 3, 2, 1]


def test_time_range_is_from_inclusive_to_exclusive(filled: AuditLog) -> None:
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    assert _actors(filled, start=start, end=end) == ["li.lei", "han.meimei"]
    shanghai = timezone(timedelta(hours=8))
    assert _actors(filled, start=start.astimezone(shanghai), end=end.astimezone(shanghai)) == [
        "li.lei", "han.meimei"]


def test_operator_ignores_case(filled: AuditLog) -> None:
    assert _actors(filled, operator="LI.LEI") == ["li.lei", "Li.Lei"]
    assert _actors(filled, operator="张三") == ["张三"]


def test_patient_by_chinese_name_id_or_latin_name(filled: AuditLog) -> None:
    assert _actors(filled, patient="王小明") == ["li.lei", "Li.Lei"]
    assert _actors(filled, patient="小明") == ["li.lei", "Li.Lei"]
    assert _actors(filled, patient="wang xiaoming") == ["han.meimei"]
    assert _actors(filled, patient="p-002") == ["han.meimei"]
    assert _actors(filled, patient="100%_") == ["ris"]  # LIKE's wildcards are literal
    assert _actors(filled, patient="%") == ["ris"]


def test_action_outcome_unit_tenant_study(filled: AuditLog) -> None:
    assert _actors(filled, actions=("download", "login-failed")) == ["张三", "li.lei"]
    assert _actors(filled, outcome="denied") == ["li.lei"]
    assert _actors(filled, unit="u-7") == ["han.meimei"]
    assert _actors(filled, tenant="hosp-b") == ["han.meimei"]
    assert _actors(filled, study="1.2.1") == ["li.lei", "Li.Lei"]
    assert _actors(filled, study="1.2.1", outcome="success") == ["Li.Lei"]


def test_iterate_reads_everything_newest_first_in_batches(filled: AuditLog,
                                                          clock: ManualClock) -> None:
    seen = iterate(filled.engine, AuditFilter(), batch=2)
    first = [next(seen).id for _ in range(2)]
    filled.record(view(actor="late"))  # appended while exporting: neither repeats nor shifts
    assert first + [r.id for r in seen] == [5, 4, 3, 2, 1]
    assert [r.id for r in iterate(filled.engine, AuditFilter(), batch=2, maximum=3)] == [6, 5, 4]


def test_same_time_rows_are_ordered_by_id(audit: AuditLog) -> None:
    for n in range(3):
        audit.record(view(actor=f"u{n}", at=T0))
    assert [r.id for r in iterate(audit.engine, AuditFilter(), batch=1)] == [3, 2, 1]


@pytest.mark.parametrize("criteria, parameter", [
    ({"start": datetime(2026, 12, 1)}, "from"),
    ({"end": datetime(2026, 12, 1)}, "to"),
    ({"start": T0, "end": T0}, "to"),
    ({"actions": ("view", "peek")}, "action"),
    ({"outcome": "maybe"}, "outcome"),
    ({"patient": " "}, "patient"),
    ({"operator": "x" * 201}, "operator"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_bad_filters_name_the_parameter(criteria: dict[str, object], parameter: str) -> None:
    with pytest.raises(FilterError) as caught:
        AuditFilter(**criteria)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_readable_tenants_bound_every_other_criterion(filled: AuditLog) -> None:
    """A hospital's auditor sees its tenant's rows only, whatever else it asks for; rows without
    a tenant (the region's own) are for region-wide readers."""
    assert _actors(filled, tenants=("hosp-b",)) == ["han.meimei"]
    assert _actors(filled, tenants=("hosp-b",), tenant="hosp-a") == []
    assert _actors(filled, tenants=("hosp-a", "hosp-b"), patient="P-00") == [
        "li.lei", "han.meimei", "Li.Lei"]
    assert _actors(filled, tenants=()) == []
    assert len(_actors(filled, tenants=None)) == 5
