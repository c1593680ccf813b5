"""``/api/modalities`` and the sync to Orthanc, over a real SQLite state database.

Orthanc is a small in-memory stand-in for its ``/modalities`` REST resource behind httpx's mock
transport (what Orthanc itself does with the modalities is proven on a real Orthanc in
tests/integration/test_dicom_security.py); the plan of PUT/DELETE is pure logic tested alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from archive_api import errors
from archive_api.modalities import Manufacturer, router
from archive_api.modality_sync import ModalitySync, SyncPlan, orthanc_body, plan
from archive_api.orthanc import AsyncOrthanc, OrthancUnreachable
from archive_audit.events import AuditEvent
from archive_state.db import make_engine
from archive_state.modalities import MANUFACTURERS, ModalitySpec, ModalityStore, Operation
from tests.unit.test_state_jobs import migrated_sqlite, sqlite_state_url  # noqa: F401

CT = ModalitySpec(name="ct-1", ae_title="CT1", host="10.0.0.5", port=104,
                  operations=frozenset({Operation.ECHO, Operation.STORE}))
WS = ModalitySpec(name="ws-1", ae_title="WS1", host="10.0.0.9", port=11112,
                  operations=frozenset({Operation.FIND, Operation.GET, Operation.MOVE}),
                  use_tls=True)


def as_orthanc_lists_it(spec: ModalitySpec) -> dict[str, Any]:
    """Orthanc's ``GET /modalities?expand`` entry: our keys plus the ones it adds itself."""
    return {**orthanc_body(spec), "AllowFindWorklist": True, "AllowStorageCommitment": True,
            "AllowTranscoding": True, "LocalAet": "", "Timeout": 0}


# --- the plan --------------------------------------------------------------------------------

def test_orthanc_body_says_every_operation() -> None:
    assert orthanc_body(WS) == {
        "AET": "WS1", "Host": "10.0.0.9", "Port": 11112, "Manufacturer": "Generic",
        "UseDicomTls": True, "AllowEcho": False, "AllowStore": False, "AllowFind": True,
        "AllowGet": True, "AllowMove": True}


def test_plan_puts_what_orthanc_lacks() -> None:
    todo = plan({"ct-1": CT, "ws-1": WS}, {})
    assert dict(todo.put) == {"ct-1": orthanc_body(CT), "ws-1": orthanc_body(WS)}
    assert todo.delete == ()


def test_plan_is_empty_when_orthanc_has_the_same() -> None:
    actual = {"ct-1": as_orthanc_lists_it(CT), "ws-1": as_orthanc_lists_it(WS)}
    assert plan({"ct-1": CT, "ws-1": WS}, actual).empty


@pytest.mark.parametrize(("key", "value"), [
    ("Port", 105), ("Host", "10.0.0.6"), ("AET", "ct1"), ("AllowStore", False),
    ("AllowGet", True), ("UseDicomTls", True), ("Manufacturer", "GE")])
def test_plan_puts_a_modality_that_differs_in_a_managed_key(key: str, value: Any) -> None:
    actual = {"ct-1": {**as_orthanc_lists_it(CT), key: value}}
    assert plan({"ct-1": CT}, actual) == SyncPlan(put={"ct-1": orthanc_body(CT)})


def test_plan_deletes_what_the_store_does_not_have() -> None:
    actual = {"ct-1": as_orthanc_lists_it(CT), "made-in-explorer": as_orthanc_lists_it(WS),
              "another": {}}
    todo = plan({"ct-1": CT}, actual)
    assert not todo.put and todo.delete == ("another", "made-in-explorer")


def test_api_manufacturers_are_the_stores() -> None:
    assert get_args(Manufacturer) == MANUFACTURERS


# --- the routes, with Orthanc's /modalities in memory ------------------------------------------

class FakeOrthancModalities:
    """Orthanc's ``/modalities`` (GET ?expand, PUT, DELETE), or a down Orthanc."""

    def __init__(self) -> None:
        self.modalities: dict[str, dict[str, Any]] = {}
        self.down = False
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        self.requests.append((request.method, path))
        if request.method == "GET" and path == "/modalities":
            return httpx.Response(200, json=self.modalities)
        name = path.removeprefix("/modalities/")
        if request.method == "PUT":
            body = json.loads(request.content)
            self.modalities[name] = {**body, "AllowTranscoding": True, "Timeout": 0}
            return httpx.Response(200, json={})
        if request.method == "DELETE":
            if self.modalities.pop(name, None) is None:
                return httpx.Response(404, json={"Message": "Unknown modality"})
            return httpx.Response(200, json={})
        return httpx.Response(404)


class Events:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class Env:
    def __init__(self, store: ModalityStore, orthanc: FakeOrthancModalities, events: Events,
                 sync: ModalitySync, client: TestClient) -> None:
        self.store, self.orthanc, self.events, self.sync, self.client = (
            store, orthanc, events, sync, client)


@pytest.fixture
def env(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Env]:
    store = ModalityStore(make_engine(sqlite_state_url(migrated_sqlite, tmp_path)), "hosp-a")
    fake = FakeOrthancModalities()
    orthanc = AsyncOrthanc("http://orthanc.test", None, transport=httpx.MockTransport(fake))
    sync = ModalitySync(store, orthanc)
    events = Events()
    app = FastAPI()
    errors.install(app)
    app.include_router(router(store, orthanc, lambda: None, sync=sync, recorder=events))
    with TestClient(app) as client:
        yield Env(store, fake, events, sync, client)


def ct_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "ct-1", "aet": "CT1", "host": "10.0.0.5", "port": 104,
                            "allowedOperations": ["echo", "store"], "description": "放射科 1 号 CT"}
    body.update(changes)
    return body


def test_register_stores_and_syncs_orthanc(env: Env) -> None:
    r = env.client.post("/api/modalities", json=ct_body())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["orthancSynced"] is True
    assert {k: body[k] for k in ("name", "aet", "host", "port", "allowedOperations",
                                 "useTls", "manufacturer", "description", "createdBy")} == {
        "name": "ct-1", "aet": "CT1", "host": "10.0.0.5", "port": 104,
        "allowedOperations": ["echo", "store"], "useTls": False, "manufacturer": "Generic",
        "description": "放射科 1 号 CT", "createdBy": "anonymous"}
    assert env.orthanc.modalities["ct-1"]["AET"] == "CT1"
    assert env.orthanc.modalities["ct-1"]["AllowStore"] is True
    assert env.orthanc.modalities["ct-1"]["AllowGet"] is False
    listed = env.client.get("/api/modalities").json()
    assert [m["name"] for m in listed] == ["ct-1"]
    assert env.client.get("/api/modalities/ct-1").json()["aet"] == "CT1"


@pytest.mark.parametrize(("changes", "field"), [
    ({"aet": "X" * 17}, "aet"), ({"aet": "CT\\1"}, "aet"), ({"aet": "放射"}, "aet"),
    ({"port": 0}, "port"), ({"port": 65536}, "port"), ({"host": "ct.example"}, "host"),
    ({"host": "300.1.1.1"}, "host"), ({"name": "ct 1"}, "name"),
])
def test_invalid_values_are_422_problems_naming_the_field(env: Env, changes: dict[str, Any],
                                                          field: str) -> None:
    r = env.client.post("/api/modalities", json=ct_body(**changes))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert env.store.list() == [] and env.orthanc.modalities == {}


def test_bad_types_and_operations_are_422_too(env: Env) -> None:
    for changes in ({"port": "104x"}, {"allowedOperations": ["print"]},
                    {"manufacturer": "Siemens"}):
        r = env.client.post("/api/modalities", json=ct_body(**changes))
        assert r.status_code == 422, (changes, r.text)
    assert env.client.post("/api/modalities", json={"name": "x"}).status_code == 422


def test_a_taken_name_is_409_and_an_unknown_one_404(env: Env) -> None:
    assert env.client.post("/api/modalities", json=ct_body()).status_code == 201
    r = env.client.post("/api/modalities", json=ct_body(aet="OTHER"))
    assert r.status_code == 409 and "ct-1" in r.json()["detail"]
    for method in ("GET", "DELETE"):
        r = env.client.request(method, "/api/modalities/nobody")
        assert r.status_code == 404 and r.headers["content-type"].startswith(
            "application/problem+json")
    r = env.client.put("/api/modalities/nobody", json=ct_body(name="nobody"))
    assert r.status_code == 404


def test_replace_changes_store_and_orthanc(env: Env) -> None:
    made = env.client.post("/api/modalities", json=ct_body()).json()
    edited = {**made, "port": 11112, "allowedOperations": ["echo", "store", "find"]}
    r = env.client.put("/api/modalities/ct-1", json=edited)  # as the console sends it back
    assert r.status_code == 200, r.text
    assert r.json()["port"] == 11112 and r.json()["orthancSynced"] is True
    assert env.orthanc.modalities["ct-1"]["Port"] == 11112
    assert env.orthanc.modalities["ct-1"]["AllowFind"] is True
    renamed = env.client.put("/api/modalities/ct-1", json={**edited, "name": "ct-2"})
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "name"


def test_delete_removes_it_from_orthanc(env: Env) -> None:
    env.client.post("/api/modalities", json=ct_body())
    r = env.client.delete("/api/modalities/ct-1")
    assert r.status_code == 200 and r.json()["name"] == "ct-1"
    assert env.orthanc.modalities == {} and env.store.list() == []


def test_a_change_stands_when_orthanc_is_down_and_the_reconcile_brings_it(env: Env) -> None:
    env.orthanc.down = True
    r = env.client.post("/api/modalities", json=ct_body())
    assert r.status_code == 201 and r.json()["orthancSynced"] is False
    assert [m.name for m in env.store.list()] == ["ct-1"]
    assert env.sync.state.ok is False and env.sync.state.error
    env.orthanc.down = False
    report = asyncio.run(env.sync.reconcile())
    assert list(report.plan.put) == ["ct-1"] and report.ok
    assert env.orthanc.modalities["ct-1"]["AET"] == "CT1" and env.sync.state.ok is True


def test_reconcile_removes_modalities_made_behind_the_archives_back(env: Env) -> None:
    env.client.post("/api/modalities", json=ct_body())
    env.orthanc.modalities["sneaky"] = as_orthanc_lists_it(WS)
    env.orthanc.modalities["ct-1"]["AllowGet"] = True
    env.orthanc.requests.clear()
    report = asyncio.run(env.sync.reconcile())
    assert report.plan.delete == ("sneaky",) and list(report.plan.put) == ["ct-1"]
    assert set(env.orthanc.modalities) == {"ct-1"}
    assert env.orthanc.modalities["ct-1"]["AllowGet"] is False
    env.orthanc.requests.clear()
    assert asyncio.run(env.sync.reconcile()).plan.empty
    assert env.orthanc.requests == [("GET", "/modalities")]


def test_every_change_is_audited_with_before_and_after(env: Env) -> None:
    env.client.post("/api/modalities", json=ct_body())
    env.client.put("/api/modalities/ct-1", json=ct_body(port=105))
    env.client.delete("/api/modalities/ct-1")
    ops = [(e.action, e.outcome, e.detail["operation"]) for e in env.events.events]
    assert ops == [("config-change", "success", op) for op in ("create", "update", "delete")]
    create, update, delete = env.events.events
    assert create.detail["before"] is None and create.detail["after"]["aet"] == "CT1"
    assert (update.detail["before"]["port"], update.detail["after"]["port"]) == (104, 105)
    assert delete.detail["after"] is None and delete.detail["before"]["name"] == "ct-1"
    assert all(e.tenant == "hosp-a" and e.actor_kind == "anonymous" for e in env.events.events)
    assert create.resource == "/api/modalities/ct-1"


def test_run_keeps_reconciling_through_failures(env: Env) -> None:
    env.store.create(CT, by=None)
    env.orthanc.down = True
    env.sync.interval = 0.01

    async def two_turns() -> None:
        task = asyncio.create_task(env.sync.run())
        while env.sync.state.ok is not False:
            await asyncio.sleep(0.005)
        env.orthanc.down = False
        while env.sync.state.ok is not True:
            await asyncio.sleep(0.005)
        task.cancel()

    asyncio.run(asyncio.wait_for(two_turns(), 10))
    assert set(env.orthanc.modalities) == {"ct-1"}


def test_reconcile_reports_unreachable_orthanc(env: Env) -> None:
    env.orthanc.down = True
    with pytest.raises(OrthancUnreachable):
        asyncio.run(env.sync.reconcile())
