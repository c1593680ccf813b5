"""Security through the real door: revocation of a key, tampering, CSRF, lockout and the audit
trail's record of them (docs/security.md). Who reaches what, role by role, tenant by tenant and
endpoint by endpoint, is test_security_matrix.py's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.orthanc_process import deep_merge
from testkit.stack import Stack

LOCKOUT = {"archive.json": {"Archive": {"Security": {
    "Enabled": True, "LockoutThreshold": 3, "LockoutWindowMinutes": 5, "LockoutMinutes": 0.05}}}}
PASSWORD = "Lin-Chuang-2026-Yi"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    archive = Stack(tmp_path_factory.mktemp("security"), overrides=LOCKOUT).start()
    try:
        yield archive
    finally:
        archive.stop()


def _unit(stack: Stack, kind: str, name: str, parent: str | None, tenant: str | None) -> str:
    made = stack.http.post(stack.url + "/api/org-units", timeout=10, json={
        "kind": kind, "name": name, "parentId": parent, "tenant": tenant})
    assert made.status_code in (200, 201), made.text
    return str(made.json()["id"])


def _region(stack: Stack) -> str:
    units = stack.http.get(stack.url + "/api/org-units", timeout=10).json()
    items = units["items"] if isinstance(units, dict) else units
    return str(next(u["id"] for u in items if u["kind"] == "region"))


def _user(stack: Stack, username: str, role: str, unit: str) -> None:
    made = stack.http.post(stack.url + "/api/users", timeout=10, json={
        "username": username, "displayName": username, "password": PASSWORD,
        "mustChangePassword": False})
    assert made.status_code in (200, 201), made.text
    grants = stack.http.put(f"{stack.url}/api/users/{made.json()['id']}/grants", timeout=10,
                            json=[{"roleId": role, "unitId": unit}])
    assert grants.status_code == 200, grants.text


def _bearer(stack: Stack, username: str) -> dict[str, str]:
    token = requests.post(stack.url + "/api/auth/token", timeout=30,
                          json={"username": username, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, dict[str, str]]:
    """A clinician and an auditor of the default tenant's hospital, and a radiologist of
    another hospital; their bearer tokens."""
    region = _region(stack)
    here = _unit(stack, "hospital", "中心医院", region, "default")
    there = _unit(stack, "hospital", "乡镇卫生院", region, "other")
    _user(stack, "clinician-1", "clinician", here)
    _user(stack, "auditor-1", "auditor", region)
    _user(stack, "radiologist-2", "radiologist", there)
    return {name: _bearer(stack, name) for name in ("clinician-1", "auditor-1", "radiologist-2")}


def test_a_revoked_key_stops_at_the_door_within_the_cache_time(stack: Stack) -> None:
    made = stack.http.post(stack.url + "/api/api-keys", timeout=10, json={
        "name": "revoke-me", "permissions": ["view"], "tenants": ["default"]})
    assert made.status_code in (200, 201), made.text
    headers = {"X-API-Key": made.json()["key"]}
    assert requests.get(stack.url + "/dicom-web/studies", headers=headers, timeout=10).status_code == 200
    revoked = stack.http.delete(f"{stack.url}/api/api-keys/{made.json()['id']}", timeout=10)
    assert revoked.status_code == 200, revoked.text
    assert requests.get(stack.url + "/api/auth/me", headers=headers, timeout=10).status_code == 401
    deadline = time.monotonic() + 5 + 3  # Archive.Door.AuthCacheSeconds, and some slack
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = requests.get(stack.url + "/dicom-web/studies", headers=headers,
                              timeout=10).status_code
        time.sleep(0.2)
    assert status == 401


def test_tampered_token_and_missing_csrf_are_refused(stack: Stack) -> None:
    bad = requests.get(stack.url + "/dicom-web/studies", timeout=10,
                       headers={"Authorization": "Bearer ak_0000000000000000_forged"})
    assert bad.status_code == 401
    browser = stack.login()
    del browser.headers["X-CSRF-Token"]
    refused = browser.post(stack.url + "/api/api-keys", timeout=10, json={
        "name": "csrf", "permissions": ["view"], "tenants": None})
    assert refused.status_code == 403, refused.text


def test_lockout_after_failures_unlocks_after_the_configured_time(
        stack: Stack, people: dict[str, dict[str, str]]) -> None:
    def login(password: str) -> requests.Response:
        return requests.post(stack.url + "/api/auth/login", timeout=30,
                             json={"username": "clinician-1", "password": password})

    for _ in range(3):
        assert login("wrong-password-1A").status_code == 401
    locked = login(PASSWORD)
    assert locked.status_code == 401 and "lock" in locked.text.lower(), locked.text
    time.sleep(0.05 * 60 + 1)  # Archive.Security.LockoutMinutes
    assert login(PASSWORD).status_code == 200
    found = stack.http.get(stack.url + "/api/audit", timeout=10,
                           params={"operator": "clinician-1", "action": "lockout"}).json()
    assert found["total"] >= 1


def test_the_audit_chain_verifies(stack: Stack, people: dict[str, dict[str, str]]) -> None:
    verdict: dict[str, Any] = stack.http.get(stack.url + "/api/audit/verify", timeout=30).json()
    assert verdict["ok"] is True and verdict["checked"] > 0, verdict
    logins = stack.http.get(stack.url + "/api/audit", timeout=10,
                            params={"action": "login"}).json()
    assert {"clinician-1", "auditor-1"} <= {row["actor"] for row in logins["items"]}


def test_key_file_is_private(stack: Stack) -> None:
    key = Path(stack.state_dir) / "audit-key"
    assert key.stat().st_mode & 0o077 == 0


def test_an_edited_configuration_is_audited_at_the_next_start(stack: Stack) -> None:
    """Runs last: it restarts the module's archive with one key changed in its files."""
    def config_rows() -> list[dict[str, Any]]:
        found = stack.http.get(stack.url + "/api/audit", timeout=10,
                               params={"action": "config-change", "tenant": "default"}).json()
        return [row for row in found["items"] if row["detail"].get("object") == "configuration"]

    [first] = config_rows()
    assert first["detail"]["operation"] == "first-start" and first["detail"]["keys"] > 50
    assert first["actorKind"] == "system" and first["resource"] == str(stack.config_dir)
    stack.stop()
    stack.overrides = deep_merge(LOCKOUT, {"archive.json": {"Archive": {
        "Door": {"AuthCacheSeconds": 4}}}})
    stack.administrator = str(stack.http.headers["Authorization"])
    stack.start()
    edited, again = config_rows()
    assert again["id"] == first["id"] and edited["detail"]["operation"] == "edited"
    assert edited["detail"]["changes"] == [
        {"key": "Archive.Door.AuthCacheSeconds", "before": 5, "after": 4}]
