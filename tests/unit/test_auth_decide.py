"""The door's decision (``decide``) for every area and built-in role, and the CSRF rule."""

from __future__ import annotations

import pytest

from archive_auth.decide import AREAS, csrf_ok, decide, own_origin
from archive_auth.permissions import BUILTIN_ROLES, PERMISSIONS, BuiltinRole, expand
from archive_auth.principal import Principal

CSRF = "csrf-token-of-the-session"


def holder(role_permissions: tuple[str, ...], *, kind: str = "token", tenant: str = "a",
           must_change: bool = False) -> Principal:
    return Principal(kind=kind, user_id=1, name="u",  # type: ignore[arg-type]
                     permissions={tenant: frozenset(role_permissions)}, public_id="p1",
                     csrf_token=CSRF if kind == "session" else None,
                     must_change_password=must_change)


EXPECTED = {  # area → roles allowed there (on their own tenant)
    "dicomweb-view": {"admin", "tenant-admin", "radiologist", "clinician", "technician"},
    "dicomweb-download": {"admin", "tenant-admin", "radiologist"},
    "dicomweb-upload": {"admin", "tenant-admin", "radiologist", "technician"},
    "viewer": {"admin", "tenant-admin", "radiologist", "clinician", "technician"},
    "orthanc-admin": {"admin"},
}


@pytest.mark.parametrize("area", sorted(AREAS))
@pytest.mark.parametrize("role", BUILTIN_ROLES, ids=lambda r: r.id)
def test_every_area_for_every_role(area: str, role: BuiltinRole) -> None:
    principal = holder(role.permissions)
    for method in ("GET", "HEAD"):
        decision = decide(principal, area, "a", method, {})
        assert decision.allowed == (role.id in EXPECTED[area]), (area, role.id, method)
        assert decision.status == (204 if decision.allowed else 403)
        assert decision.permission == AREAS[area]
    # the same role on another tenant is not allowed here
    assert decide(principal, area, "b", "GET", {}).status == 403


def test_expected_table_follows_the_permissions() -> None:
    for area, permission in AREAS.items():
        allowed = {r.id for r in BUILTIN_ROLES if permission in expand(r.permissions)}
        assert allowed == EXPECTED[area]


def test_no_credential_is_401_and_an_unknown_area_403() -> None:
    assert decide(None, "viewer", "a", "GET", {}).status == 401
    admin = holder(PERMISSIONS, tenant="*")
    assert decide(admin, "everything", "a", "GET", {}).reason == "unknown-area"
    assert decide(admin, "viewer", "", "GET", {}).status == 403


def test_a_user_who_must_change_the_password_gets_nothing() -> None:
    decision = decide(holder(PERMISSIONS, must_change=True), "viewer", "a", "GET", {})
    assert (decision.status, decision.reason) == (403, "password-change-required")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_cookie_requests_with_unsafe_methods_need_the_csrf_token(method: str) -> None:
    session = holder(PERMISSIONS, kind="session")
    assert decide(session, "dicomweb-upload", "a", method, {}).reason == "csrf"
    assert decide(session, "dicomweb-upload", "a", method,
                  {"X-CSRF-Token": "guess"}).reason == "csrf"
    assert decide(session, "dicomweb-upload", "a", method, {"X-CSRF-Token": CSRF}).allowed
    # bearer tokens and API keys carry no ambient authority: no token needed
    assert decide(holder(PERMISSIONS), "dicomweb-upload", "a", method, {}).allowed
    assert decide(holder(PERMISSIONS, kind="api-key"), "dicomweb-upload", "a", method,
                  {}).allowed


def test_safe_methods_need_no_csrf_token() -> None:
    session = holder(PERMISSIONS, kind="session")
    for method in ("GET", "HEAD", "OPTIONS"):
        assert csrf_ok(session, method, {})


def test_orthanc_admin_accepts_the_same_origin_instead_of_the_token() -> None:
    admin = holder(PERMISSIONS, kind="session")
    same = {"Host": "archive.example:8443", "X-Forwarded-Proto": "https",
            "Origin": "https://archive.example:8443"}
    assert own_origin(same) == "https://archive.example:8443"
    assert decide(admin, "orthanc-admin", "a", "DELETE", same).allowed
    for origin in ("https://evil.example", "http://archive.example:8443", "null", ""):
        headers = {**same, "Origin": origin}
        assert decide(admin, "orthanc-admin", "a", "DELETE", headers).reason == "csrf", origin
    # the exception is for Orthanc Explorer only
    assert decide(admin, "dicomweb-upload", "a", "POST", same).reason == "csrf"
    assert decide(admin, "orthanc-admin", "a", "POST", {"X-CSRF-Token": CSRF}).allowed


def test_the_anonymous_principal_of_a_disabled_security_may_do_everything() -> None:
    anyone = Principal.anonymous()
    assert all(decide(anyone, area, "a", "POST", {}).allowed for area in AREAS)
