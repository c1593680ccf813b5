"""``/api/auth/*`` and the administration routes through FastAPI's test client, over a real
SQLite control database, with a list-backed audit recorder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from archive_api import admin_routes, auth_routes, authz, errors
from archive_auth.principal import Principal
from archive_config.security_settings import SecuritySettings
from tests.unit._auth_env import (
    PASSWORD,
    ListRecorder,
    World,
    control_engine,
    control_template,
    make_world,
)

TENANT = "a"


@pytest.fixture(scope="session")
def control_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return control_template(tmp_path_factory.mktemp("control-template"))


class Api:
    def __init__(self, world: World, recorder: ListRecorder, app: FastAPI) -> None:
        self.world = world
        self.recorder = recorder
        self.app = app

    def client(self) -> TestClient:
        return TestClient(self.app)

    def login(self, username: str, password: str = PASSWORD) -> tuple[TestClient, str]:
        client = self.client()
        answer = client.post("/api/auth/login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return client, answer.json()["csrfToken"]


def build_app(world: World, recorder: ListRecorder) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    authz.install(app)
    guard = authz.Authz(world.auth.authenticator, recorder, tenant=TENANT,
                        enabled=world.auth.settings.enabled)
    app.include_router(auth_routes.router(world.auth, guard, recorder))
    app.include_router(admin_routes.router(world.auth, guard, recorder))

    @app.post("/api/things")  # stands for any route that needs a permission
    def upload(principal: Principal = Depends(guard.require("upload"))) -> dict[str, Any]:
        return {"by": principal.name}

    return app


@pytest.fixture
def api(control_db: Path, tmp_path: Path) -> Iterator[Api]:
    engine = control_engine(control_db, tmp_path)
    world = make_world(engine, SecuritySettings(lockout_threshold=3, lockout_minutes=15))
    world.user("root", ("admin", world.region))
    world.user("ha", ("tenant-admin", world.hospital_a))
    world.user("rad", ("radiologist", world.department_a))
    world.user("doc", ("clinician", world.hospital_b))
    recorder = ListRecorder()
    yield Api(world, recorder, build_app(world, recorder))
    engine.dispose()


# --- login, me, logout -------------------------------------------------------------------------


def test_login_sets_an_httponly_samesite_lax_cookie(api: Api) -> None:
    client = api.client()
    answer = client.post("/api/auth/login", json={"username": "RAD", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"]["username"] == "rad" and body["csrfToken"]
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("archive_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered
    assert answer.headers["cache-control"] == "no-store"
    token = cookie.split(";")[0].split("=", 1)[1]
    assert token not in str(api.world.auth.sessions.lookup(token))  # never in its repr
    events = [e for e in api.recorder.events if e.action == "login"]
    assert events and events[0].actor == "rad" and events[0].outcome == "success"
    assert events[0].session == api.world.auth.sessions.lookup(token).public_id  # type: ignore[union-attr]


def test_the_cookie_is_secure_behind_https(api: Api) -> None:
    answer = api.client().post("/api/auth/login", headers={"X-Forwarded-Proto": "https"},
                               json={"username": "rad", "password": PASSWORD})
    assert "secure" in answer.headers["set-cookie"].lower()


def test_a_wrong_password_and_an_unknown_user_answer_the_same_401(api: Api) -> None:
    client = api.client()
    wrong = client.post("/api/auth/login", json={"username": "rad", "password": "nope"})
    unknown = client.post("/api/auth/login", json={"username": "ghost", "password": "nope"})
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"] == 'Bearer realm="archive"'
        assert "set-cookie" not in answer.headers
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["detailZh"] == "用户名或密码错误"
    assert [e.action for e in api.recorder.events] == ["login-failed", "login-failed"]
    assert api.recorder.events[1].detail["reason"] == "unknown"


def test_lockout_through_the_api(api: Api) -> None:
    client = api.client()
    for _ in range(3):
        answer = client.post("/api/auth/login", json={"username": "rad", "password": "bad"})
    assert answer.status_code == 401 and answer.json()["code"] == "locked"
    assert "lockedUntil" in answer.json() and "锁定" in answer.json()["detail"]
    assert api.recorder.actions() == ["login-failed"] * 3 + ["lockout"]
    locked = client.post("/api/auth/login", json={"username": "rad", "password": PASSWORD})
    assert locked.status_code == 401 and locked.json()["code"] == "locked"
    api.world.clock.advance(minutes=15)
    assert client.post("/api/auth/login",
                       json={"username": "rad", "password": PASSWORD}).status_code == 200


def test_me_says_who_and_what(api: Api) -> None:
    client, csrf = api.login("rad")
    me = client.get("/api/auth/me").json()
    assert me["kind"] == "session" and me["name"] == "rad" and me["csrfToken"] == csrf
    assert me["permissions"] == {"a": ["view", "download", "upload", "share"]}
    assert me["tenant"] == TENANT and me["session"]
    assert api.client().get("/api/auth/me").status_code == 401


def test_logout_revokes_the_session_and_needs_the_csrf_token(api: Api) -> None:
    client, csrf = api.login("rad")
    token = client.cookies.get("archive_session")
    assert client.post("/api/auth/logout").status_code == 403
    answer = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 204
    assert 'archive_session=""' in answer.headers["set-cookie"] or \
        "max-age=0" in answer.headers["set-cookie"].lower()
    assert api.world.auth.sessions.lookup(str(token)) is None
    again = api.client()
    again.cookies.set("archive_session", str(token))
    assert again.get("/api/auth/me").status_code == 401
    assert "logout" in api.recorder.actions()


# --- CSRF on /api, tokens, password change ------------------------------------------------------


def test_cookie_requests_need_the_csrf_token_bearer_requests_do_not(api: Api) -> None:
    client, csrf = api.login("rad")
    refused = client.post("/api/things")
    assert refused.status_code == 403 and refused.json()["code"] == "csrf"
    assert client.post("/api/things", headers={"X-CSRF-Token": csrf}).json() == {"by": "rad"}
    token = api.client().post("/api/auth/token", data={"username": "rad", "password": PASSWORD})
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    bearer = api.client().post("/api/things",
                               headers={"Authorization": f"Bearer {body['access_token']}"})
    assert bearer.json() == {"by": "rad"}
    json_token = api.client().post("/api/auth/token",
                                   json={"username": "rad", "password": PASSWORD})
    assert json_token.status_code == 200
    bad = api.client().post("/api/auth/token", data={"username": "rad", "password": "x"})
    assert bad.status_code == 401


def test_a_permission_missing_on_this_tenant_is_403_and_audited(api: Api) -> None:
    client, csrf = api.login("doc")  # clinician of tenant b
    answer = client.post("/api/things", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    denied = [e for e in api.recorder.events if e.action == "access-denied"]
    assert denied and denied[-1].actor == "doc" and denied[-1].detail["permission"] == "upload"


def test_password_change(api: Api) -> None:
    client, csrf = api.login("rad")
    other, _ = api.login("rad")
    headers = {"X-CSRF-Token": csrf}
    weak = client.post("/api/auth/password", headers=headers,
                       json={"old": PASSWORD, "new": "short"})
    assert weak.status_code == 422 and weak.json()["code"] == "too-short"
    wrong = client.post("/api/auth/password", headers=headers,
                        json={"old": "not-it", "new": "Brand-New-Pass-1"})
    assert wrong.status_code == 401
    done = client.post("/api/auth/password", headers=headers,
                       json={"old": PASSWORD, "new": "Brand-New-Pass-1"})
    assert done.status_code == 204
    assert client.get("/api/auth/me").status_code == 200
    assert other.get("/api/auth/me").status_code == 401  # the other session ended
    api.login("rad", "Brand-New-Pass-1")


def test_a_user_who_must_change_the_password_may_only_do_that(api: Api) -> None:
    api.world.user("newbie", ("radiologist", api.world.hospital_a), must_change=True)
    client, csrf = api.login("newbie")
    headers = {"X-CSRF-Token": csrf}
    assert client.get("/api/auth/me").json()["mustChangePassword"] is True
    blocked = client.post("/api/things", headers=headers)
    assert blocked.status_code == 403 and blocked.json()["code"] == "password-change-required"
    assert client.post("/api/auth/password", headers=headers,
                       json={"old": PASSWORD, "new": "Own-Choice-55"}).status_code == 204
    assert client.post("/api/things", headers=headers).status_code == 200


# --- the door's check ---------------------------------------------------------------------------


def door(area: str, method: str = "GET", tenant: str = TENANT) -> dict[str, str]:
    return {"X-Door-Area": area, "X-Door-Tenant": tenant, "X-Original-Method": method,
            "X-Original-URI": "/dicom-web/studies"}


def test_check_allows_with_user_and_session_headers(api: Api) -> None:
    client, csrf = api.login("rad")
    ok = client.get("/api/auth/check", headers=door("dicomweb-download"))
    assert ok.status_code == 204
    assert ok.headers["x-archive-user"] == "rad"
    assert ok.headers["x-archive-session"] == client.get("/api/auth/me").json()["session"]
    assert ok.headers["x-archive-kind"] == "user"
    assert ok.headers["x-accel-expires"] == "5"
    post = client.get("/api/auth/check", headers={**door("dicomweb-upload", "POST"),
                                                   "X-CSRF-Token": csrf})
    assert post.status_code == 204 and post.headers["x-accel-expires"] == "0"
    csrf_missing = client.get("/api/auth/check", headers=door("dicomweb-upload", "POST"))
    assert csrf_missing.status_code == 403 and csrf_missing.headers["x-accel-expires"] == "0"
    other_tenant = client.get("/api/auth/check", headers=door("viewer", tenant="b"))
    assert other_tenant.status_code == 403 and other_tenant.headers["x-accel-expires"] == "5"
    # A refusal names the caller too: the door's audit log counts it under "rad".
    assert (other_tenant.headers["x-archive-user"], other_tenant.headers["x-archive-kind"]) == (
        "rad", "user")
    admin_area = client.get("/api/auth/check", headers=door("orthanc-admin"))
    assert admin_area.status_code == 403
    denied = [e for e in api.recorder.events if e.action == "access-denied"]
    assert [e.detail["reason"] for e in denied] == ["csrf", "forbidden", "forbidden"]
    assert denied[1].tenant == "b" and denied[1].resource == "GET /dicom-web/studies"


def test_check_without_a_credential_is_401_never_cached(api: Api) -> None:
    answer = api.client().get("/api/auth/check", headers=door("viewer"))
    assert answer.status_code == 401
    assert answer.headers["x-accel-expires"] == "0"
    assert answer.headers["www-authenticate"] == 'Bearer realm="archive"'


def test_check_with_api_keys_and_chinese_names(api: Api) -> None:
    key, record = api.world.auth.api_keys.create("超声上传", ["upload"], tenants=[TENANT],
                                                 created_by="root")
    client = api.client()
    ok = client.get("/api/auth/check", headers={**door("dicomweb-upload", "POST"),
                                                "X-API-Key": key})
    assert ok.status_code == 204
    assert ok.headers["x-archive-user"] == "%E8%B6%85%E5%A3%B0%E4%B8%8A%E4%BC%A0"
    assert ok.headers["x-archive-session"] == record.id
    assert ok.headers["x-archive-kind"] == "api-key"  # the door's audit log names it so
    api.world.auth.api_keys.revoke(record.id)
    assert client.get("/api/auth/check", headers={**door("dicomweb-upload", "POST"),
                                                  "X-API-Key": key}).status_code == 401


def test_with_security_off_everything_is_allowed(control_db: Path, tmp_path: Path) -> None:
    engine = control_engine(control_db, tmp_path)
    try:
        world = make_world(engine, SecuritySettings(enabled=False))
        client = TestClient(build_app(world, ListRecorder()))
        check = client.get("/api/auth/check", headers=door("orthanc-admin", "DELETE"))
        assert check.status_code == 204 and check.headers["x-archive-user"] == "anonymous"
        assert client.post("/api/things").json() == {"by": "anonymous"}
    finally:
        engine.dispose()


# --- administration -----------------------------------------------------------------------------


def test_admin_routes_refuse_non_admins(api: Api) -> None:
    client, csrf = api.login("rad")
    h = {"X-CSRF-Token": csrf}
    for method, path in (("GET", "/api/users"), ("GET", "/api/roles"),
                         ("GET", "/api/org-units"), ("GET", "/api/api-keys"),
                         ("POST", "/api/users/1/unlock")):
        assert client.request(method, path, headers=h).status_code == 403, path
    assert api.client().get("/api/users").status_code == 401


def test_a_region_admin_manages_users(api: Api) -> None:
    client, csrf = api.login("root")
    h = {"X-CSRF-Token": csrf}
    made = client.post("/api/users", headers=h, json={
        "username": "李明", "displayName": "李明", "password": "Liming-Pass-3",
        "grants": [{"roleId": "clinician", "unitId": api.world.hospital_b.id}]})
    assert made.status_code == 201, made.text
    user = made.json()
    assert user["permissions"] == {"b": ["view"]} and user["mustChangePassword"] is True
    weak = client.post("/api/users", headers=h, json={"username": "x1", "password": "weak"})
    assert weak.status_code == 422 and weak.json()["code"] == "too-short"
    taken = client.post("/api/users", headers=h, json={"username": "ROOT",
                                                       "password": "Liming-Pass-3"})
    assert taken.status_code == 409
    uid = user["id"]
    assert client.patch(f"/api/users/{uid}", headers=h,
                        json={"disabled": True}).json()["disabled"] is True
    assert client.post(f"/api/users/{uid}/password", headers=h,
                       json={"password": "Reset-Pass-44"}).status_code == 200
    assert client.delete(f"/api/users/{uid}", headers=h).status_code == 204
    assert client.get(f"/api/users/{uid}", headers=h).status_code == 404
    ops = [e.detail["operation"] for e in api.recorder.events if e.action == "user-admin"]
    assert ops == ["user-create", "user-update", "password-reset", "user-delete"]


def test_unlock_through_the_api(api: Api) -> None:
    for _ in range(3):
        api.client().post("/api/auth/login", json={"username": "rad", "password": "bad"})
    rad = api.world.auth.users.find("rad")
    assert rad is not None
    client, csrf = api.login("root")
    answer = client.post(f"/api/users/{rad.id}/unlock", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json()["locked"] is False
    api.login("rad")


def test_a_tenant_admin_cannot_grant_admin_or_reach_other_tenants(api: Api) -> None:
    client, csrf = api.login("ha")
    h = {"X-CSRF-Token": csrf}
    w = api.world
    listed = {u["username"] for u in client.get("/api/users", headers=h).json()}
    assert {"ha", "rad"} <= listed and "doc" not in listed and "root" not in listed
    made = client.post("/api/users", headers=h, json={
        "username": "tech1", "password": "Tech-Pass-123",
        "grants": [{"roleId": "technician", "unitId": w.department_a.id}]})
    assert made.status_code == 201
    uid = made.json()["id"]
    for grants in ([{"roleId": "admin", "unitId": w.hospital_a.id}],
                   [{"roleId": "admin", "unitId": w.region.id}],
                   [{"roleId": "clinician", "unitId": w.hospital_b.id}],
                   [{"roleId": "auditor", "unitId": w.hospital_a.id}]):
        refused = client.put(f"/api/users/{uid}/grants", headers=h, json=grants)
        assert refused.status_code == 403, grants
    ok = client.put(f"/api/users/{uid}/grants", headers=h,
                    json=[{"roleId": "radiologist", "unitId": w.hospital_a.id}])
    assert ok.status_code == 200
    root = w.auth.users.find("root")
    doc = w.auth.users.find("doc")
    assert root is not None and doc is not None
    for target in (root.id, doc.id):
        assert client.post(f"/api/users/{target}/password", headers=h,
                           json={"password": "Taken-Over-1"}).status_code == 403
    assert client.post("/api/roles", headers=h, json={
        "id": "x", "name": "x", "nameEn": "x", "permissions": ["view"]}).status_code == 403
    units = {u["id"] for u in client.get("/api/org-units", headers=h).json()}
    assert units == {w.region.id, w.hospital_a.id, w.department_a.id}
    assert client.post("/api/org-units", headers=h, json={
        "kind": "clinic", "name": "诊所", "parentId": w.hospital_a.id}).status_code == 403


def test_api_keys_through_the_api(api: Api) -> None:
    client, csrf = api.login("ha")
    h = {"X-CSRF-Token": csrf}
    made = client.post("/api/api-keys", headers=h,
                       json={"name": "CT-1", "permissions": ["upload"], "tenants": ["a"]})
    assert made.status_code == 201 and made.json()["key"].startswith("ak_")
    assert made.headers["cache-control"] == "no-store"
    assert client.post("/api/api-keys", headers=h, json={
        "name": "all", "permissions": ["view"], "tenants": None}).status_code == 403
    assert client.post("/api/api-keys", headers=h, json={
        "name": "b", "permissions": ["view"], "tenants": ["b"]}).status_code == 403
    assert client.post("/api/api-keys", headers=h, json={
        "name": "p", "permissions": ["purge"], "tenants": ["a"]}).status_code == 403
    listed = client.get("/api/api-keys", headers=h).json()
    assert [k["name"] for k in listed] == ["CT-1"] and "key" not in listed[0]
    key = made.json()["key"]
    upload = api.client().post("/api/things", headers={"X-API-Key": key})
    assert upload.json() == {"by": "CT-1"}
    revoked = client.delete(f"/api/api-keys/{made.json()['id']}", headers=h)
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert api.client().post("/api/things", headers={"X-API-Key": key}).status_code == 401


def test_roles_and_org_units_for_the_region_admin(api: Api) -> None:
    client, csrf = api.login("root")
    h = {"X-CSRF-Token": csrf}
    role = client.post("/api/roles", headers=h, json={
        "id": "qc", "name": "质控员", "nameEn": "QC", "permissions": ["view", "restore"]})
    assert role.status_code == 201
    assert client.delete("/api/roles/admin", headers=h).status_code == 403
    unit = client.post("/api/org-units", headers=h, json={
        "kind": "clinic", "name": "社区诊所", "parentId": api.world.hospital_b.id})
    assert unit.status_code == 201 and unit.json()["scope"] == "b"
    renamed = client.patch(f"/api/org-units/{unit.json()['id']}", headers=h,
                           json={"nameEn": "Community clinic"})
    assert renamed.json()["nameEn"] == "Community clinic"
    assert client.delete(f"/api/org-units/{api.world.hospital_a.id}",
                         headers=h).status_code == 409
    assert client.delete(f"/api/org-units/{unit.json()['id']}", headers=h).status_code == 204


def test_the_last_region_admin_stays(api: Api) -> None:
    client, csrf = api.login("root")
    h = {"X-CSRF-Token": csrf}
    root = api.world.auth.users.find("root")
    assert root is not None
    assert client.put(f"/api/users/{root.id}/grants", headers=h, json=[]).status_code == 409
    assert client.delete(f"/api/users/{root.id}", headers=h).status_code == 409
