"""``/api/audit*`` over a real migrated SQLite control database, through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import text

from archive_api import audit_routes, errors
from archive_audit.atna import AuditSource
from archive_audit.chain import AuditLog
from archive_audit.events import AuditEvent
from archive_auth.principal import Principal
from archive_state.db import write
from tests.unit._audit_env import (NAME, T0, ManualClock, audit, clock,  # noqa: F401
                                   control_template, engine, view)


def allow() -> None:
    """The tests' authorization: everyone may (the lead passes require("audit-read"))."""


def app_for(log: AuditLog, authorize: Callable[..., Any] = allow, **options: Any) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(audit_routes.router(log, authorize, **options))
    return app


def get(app: FastAPI, path: str, params: Any = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://archive") as client:
            return await client.get(path, params=params)

    return asyncio.run(call())


@pytest.fixture()
def filled(audit: AuditLog, clock: ManualClock) -> AuditLog:
    for event in (view(), view(actor="han", patient_name="李^四", patient_id="P-2"),
                  AuditEvent("login-failed", "failure", "张三", "user", source_ip="10.0.0.1")):
        audit.record(event)
        clock.advance(60)
    return audit


def test_page_is_camel_case_newest_first(filled: AuditLog) -> None:
    response = get(app_for(filled), "/api/audit", {"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    assert [i["actor"] for i in body["items"]] == ["张三", "han"]
    item = body["items"][1]
    assert {"actorKind", "sourceIp", "patientId", "patientName", "studyUid", "prevHash",
            "hash", "detail", "at"} <= set(item)
    assert item["patientName"] == "李^四"


def test_filters_reach_the_search(filled: AuditLog) -> None:
    app = app_for(filled)
    assert get(app, "/api/audit", {"patient": "王小明"}).json()["total"] == 1
    assert get(app, "/api/audit", {"action": "view,login-failed"}).json()["total"] == 3
    assert get(app, "/api/audit", [("action", "login-failed"), ("action", "view")]).json()[
        "total"] == 3
    assert get(app, "/api/audit", {"outcome": "failure", "operator": "张三"}).json()["total"] == 1
    start = (T0 + timedelta(seconds=30)).isoformat()
    assert get(app, "/api/audit", {"from": start}).json()["total"] == 2
    assert get(app, "/api/audit", {"to": "2026-12-02T16:00:30+08:00"}).json()["total"] == 1


@pytest.mark.parametrize("params, parameter", [
    ({"from": "yesterday"}, "from"), ({"to": "2026-12-02T08:00:00"}, "to"),
    ({"action": "peek"}, "action"), ({"outcome": "maybe"}, "outcome"),
    ({"limit": 0}, "limit"), ({"limit": "many"}, "limit"), ({"offset": -1}, "offset"),
])
def test_bad_filters_are_400_naming_the_parameter(filled: AuditLog, params: dict[str, Any],
                                                  parameter: str) -> None:
    response = get(app_for(filled), "/api/audit", params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [parameter]
    assert parameter in body["detail"]


def test_bad_filters_are_400_on_the_exports_too(filled: AuditLog) -> None:
    app = app_for(filled)
    for path in ("/api/audit.csv", "/api/audit/atna"):
        response = get(app, path, {"outcome": "maybe"})
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "outcome"


def test_csv_download(filled: AuditLog) -> None:
    response = get(app_for(filled), "/api/audit.csv", {"action": "view"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="audit-') and disposition.endswith('.csv"')
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "编号 (ID)" and len(rows) == 3
    assert {r[12] for r in rows[1:]} == {NAME, "李^四"}


def test_atna_download_parses(filled: AuditLog) -> None:
    response = get(app_for(filled, source=AuditSource("arch-1")), "/api/audit/atna")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/xml")
    root = ET.fromstring(response.content)
    assert [m.find("EventIdentification/EventID").get("csd-code")  # type: ignore[union-attr]
            for m in root] == ["110114", "110103", "110103"]
    assert {m.find("AuditSourceIdentification").get("AuditSourceID")  # type: ignore[union-attr]
            for m in root} == {"arch-1"}


def test_exports_refuse_more_rows_than_the_limit(filled: AuditLog) -> None:
    response = get(app_for(filled, export_limit=2), "/api/audit.csv")
    assert response.status_code == 400
    assert response.json()["total"] == 3 and "narrow the filter" in response.json()["detail"]


def test_verify_answers_ok_then_names_the_tampered_row(filled: AuditLog) -> None:
    app = app_for(filled)
    body = get(app, "/api/audit/verify").json()
    assert body["ok"] is True and body["checked"] == 3 and body["headId"] == 3
    with write(filled.engine) as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'x' WHERE id = 2"))
    body = get(app, "/api/audit/verify").json()
    assert (body["ok"], body["firstBadId"], body["problem"]) == (False, 2, "changed")
    assert "row 2" in body["message"]


def test_the_authorization_dependency_guards_every_route(filled: AuditLog) -> None:
    seen: list[str] = []

    def deny(request: Request) -> None:
        seen.append(request.url.path)
        raise HTTPException(403, "需要 audit-read 权限 / needs audit-read")

    app = app_for(filled, deny)
    for path in ("/api/audit", "/api/audit.csv", "/api/audit/atna", "/api/audit/verify"):
        assert get(app, path).status_code == 403
    assert seen == ["/api/audit", "/api/audit.csv", "/api/audit/atna", "/api/audit/verify"]


def test_a_hospitals_auditor_reads_only_its_tenants_rows(filled: AuditLog) -> None:
    """The rows the principal of ``authorize`` may read: its tenants' (the search, the page's
    total and the exports alike); audit-read on the region reads every row."""

    def auditor(tenants: dict[str, frozenset[str]]) -> Callable[[], Principal]:
        return lambda: Principal(kind="token", user_id=7, name="auditor", permissions=tenants)

    hospital = app_for(filled, auditor({"hosp-a": frozenset({"audit-read"}),
                                        "hosp-b": frozenset({"view"})}))
    page = get(hospital, "/api/audit").json()
    assert page["total"] == 2 and {i["tenant"] for i in page["items"]} == {"hosp-a"}
    assert get(hospital, "/api/audit", {"tenant": "hosp-b"}).json()["total"] == 0
    rows = list(csv.reader(io.StringIO(get(hospital, "/api/audit.csv").content.decode(
        "utf-8-sig"))))
    assert len(rows) == 3
    assert len(ET.fromstring(get(hospital, "/api/audit/atna").content)) == 2
    region = app_for(filled, auditor({"*": frozenset({"audit-read"})}))
    assert get(region, "/api/audit").json()["total"] == 3


def test_every_use_of_the_trail_is_recorded_with_its_filter(filled: AuditLog) -> None:
    used: list[tuple[str, str, dict[str, Any]]] = []

    def record(request: Request, principal: Principal, action: str, **fields: Any) -> None:
        used.append((principal.name, action, fields["detail"]))
        filled.record(AuditEvent(action, "success", principal.name, "user",  # type: ignore[arg-type]
                                 detail=fields["detail"]))

    def auditor() -> Principal:
        return Principal(kind="token", user_id=7, name="auditor",
                         permissions={"*": frozenset({"audit-read"})})

    app = app_for(filled, auditor, record=record)
    assert get(app, "/api/audit", {"operator": "han", "action": "view"}).json()["total"] == 1
    csv_rows = list(csv.reader(io.StringIO(get(app, "/api/audit.csv").content.decode(
        "utf-8-sig"))))
    verdict = get(app, "/api/audit/verify").json()
    assert [(name, action, detail["operation"], detail["rows"]) for name, action, detail in used] \
        == [("auditor", "audit-read", "search", 1), ("auditor", "audit-read", "csv", 4),
            ("auditor", "audit-read", "verify", verdict["checked"])]
    assert used[0][2]["filter"] == {"operator": "han", "action": ["view"]}
    assert len(csv_rows) == 1 + 5  # the header; the 3 rows, the search's and the export's own
    assert verdict["ok"] is True and verdict["checked"] == 5
    # This search is recorded after it ran: the three before it.
    assert get(app, "/api/audit", {"action": "audit-read"}).json()["total"] == 3
