"""The auth stores on a real SQLite control database: org tree, roles and grants resolved per
tenant, lockout, sessions, bearer tokens, API keys and authenticate()."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from archive_auth.errors import Conflict, Forbidden, InvalidInput, PasswordRejected
from archive_auth.lockout import LockoutPolicy, LockState, after_failure
from archive_auth.principal import Principal
from archive_auth.users import Grant
from archive_config.security_settings import SecuritySettings
from tests.unit._auth_env import PASSWORD, T0, World, control_engine, control_template, make_world


@pytest.fixture(scope="session")
def control_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return control_template(tmp_path_factory.mktemp("control-template"))


@pytest.fixture
def world(control_db: Path, tmp_path: Path) -> Iterator[World]:
    engine = control_engine(control_db, tmp_path)
    yield make_world(engine, SecuritySettings(lockout_threshold=3, lockout_minutes=10,
                                              lockout_window_minutes=5))
    engine.dispose()


def principal_of(world: World, **headers: str) -> Principal | None:
    cookies = {}
    if "cookie" in headers:
        cookies["archive_session"] = headers.pop("cookie")
    return world.auth.authenticator.authenticate(headers, cookies)


# --- org units and roles -----------------------------------------------------------------------


def test_a_unit_s_tenant_is_its_own_or_inherited_and_the_region_is_every_tenant(
        world: World) -> None:
    assert world.region.scope == "*"
    assert world.hospital_a.scope == "a"
    assert world.department_a.tenant is None and world.department_a.scope == "a"
    loose = world.auth.org.create("clinic", "未归属诊所", parent_id=world.region.id)
    assert loose.scope is None


def test_org_rules(world: World) -> None:
    org = world.auth.org
    with pytest.raises(Conflict):
        org.create("region", "第二区域")
    with pytest.raises(InvalidInput, match="tenant"):
        org.create("hospital", "无租户医院", parent_id=world.region.id)
    with pytest.raises(Conflict, match="under itself"):
        org.update(world.hospital_a.id, parent_id=world.department_a.id)
    with pytest.raises(Conflict, match="units under it"):
        org.delete(world.hospital_a.id)
    moved = org.update(world.department_a.id, parent_id=world.hospital_b.id)
    assert moved.scope == "b"
    user = world.user("wang", ("clinician", world.department_a))
    with pytest.raises(Conflict, match="hold roles"):
        org.delete(world.department_a.id)
    world.auth.users.set_grants(user.id, [], by="t")
    org.delete(world.department_a.id)
    assert world.department_a.id not in {u.id for u in org.list()}


def test_built_in_roles_are_seeded_and_fixed(world: World) -> None:
    roles = {r.id: r for r in world.auth.roles.list()}
    assert set(roles) == {"admin", "tenant-admin", "radiologist", "clinician", "technician",
                          "auditor"}
    assert roles["tenant-admin"].name == "医院管理员"
    assert "purge" not in roles["tenant-admin"].permissions
    with pytest.raises(Forbidden):
        world.auth.roles.delete("clinician")
    with pytest.raises(Forbidden):
        world.auth.roles.update("clinician", permissions=["view", "download"])
    assert world.auth.roles.update("clinician", name_en="Physician").name_en == "Physician"
    custom = world.auth.roles.create("qc", "质控员", "QC officer", ["view", "restore"])
    assert custom.permissions == ("view", "restore") and not custom.builtin
    with pytest.raises(InvalidInput, match="unknown permission"):
        world.auth.roles.create("bad", "坏", "Bad", ["fly"])
    world.auth.roles.delete("qc")


def test_grants_resolve_per_tenant(world: World) -> None:
    user = world.user("li", ("radiologist", world.department_a), ("clinician", world.hospital_b),
                      ("auditor", world.region))
    perms = world.auth.users.permissions(user.id)
    assert perms == {"a": frozenset({"view", "download", "upload", "share"}),
                     "b": frozenset({"view"}), "*": frozenset({"audit-read"})}
    principal = Principal("token", user.id, "li", perms)
    assert principal.allows("download", "a") and not principal.allows("download", "b")
    assert principal.allows("audit-read", "c")  # the region grant counts on every tenant
    assert not principal.allows("view", "c")


def test_admin_on_the_region_implies_everything_everywhere(world: World) -> None:
    root = world.user("root", ("admin", world.region))
    principal = Principal("token", root.id, "root", world.auth.users.permissions(root.id))
    assert all(principal.allows(p, "anything") for p in ("purge", "user-admin", "configure"))


def test_usernames_are_unique_without_regard_to_case_and_may_be_chinese(world: World) -> None:
    world.user("Zhang.Wei")
    with pytest.raises(Conflict):
        world.user("zhang.wei")
    assert world.auth.users.find("ZHANG.WEI") is not None
    chinese = world.auth.accounts.create_user("张伟", "张伟", "Yingxiang-2026")
    assert world.auth.users.find("张伟") == chinese
    with pytest.raises(InvalidInput):
        world.user("has:colon")
    with pytest.raises(PasswordRejected):
        world.auth.accounts.create_user("weak", "Weak", "weakweakweak")


# --- lockout -----------------------------------------------------------------------------------


def test_lockout_rule_alone() -> None:
    policy = LockoutPolicy(threshold=3, window=timedelta(minutes=5),
                           duration=timedelta(minutes=10))
    state = LockState()
    for minute in range(2):
        state = after_failure(policy, state, T0 + timedelta(minutes=minute))
    assert state.failed_count == 2 and not state.locked(T0 + timedelta(minutes=1))
    # The third failure after the window has run out counts as the first again.
    late = after_failure(policy, state, T0 + timedelta(minutes=6))
    assert late.failed_count == 1 and late.locked_until is None
    locked = after_failure(policy, state, T0 + timedelta(minutes=2))
    assert locked.locked_until == T0 + timedelta(minutes=12)
    assert after_failure(policy, locked, T0 + timedelta(minutes=3)) == locked  # not extended


def test_n_failures_lock_m_minutes_unlock_and_success_resets(world: World) -> None:
    world.user("chen")
    accounts = world.auth.accounts
    assert accounts.login("chen", "wrong").failure == "wrong-password"
    assert accounts.login("chen", "wrong").failure == "wrong-password"
    third = accounts.login("chen", "wrong")
    assert third.failure == "locked" and third.locked_now
    assert third.locked_until == T0 + timedelta(minutes=10)
    refused = accounts.login("chen", PASSWORD)  # the right password while locked
    assert refused.user is None and refused.failure == "locked" and not refused.locked_now
    world.clock.advance(minutes=10)
    assert accounts.login("chen", PASSWORD).user is not None
    # success reset the count: two failures do not lock
    accounts.login("chen", "wrong")
    accounts.login("chen", "wrong")
    assert accounts.login("chen", PASSWORD).user is not None
    assert world.auth.users.find("chen").failed_count == 0  # type: ignore[union-attr]


def test_an_admin_unlocks_at_once(world: World) -> None:
    user = world.user("zhao")
    for _ in range(3):
        world.auth.accounts.login("zhao", "wrong")
    assert world.auth.accounts.login("zhao", PASSWORD).failure == "locked"
    world.auth.users.unlock(user.id)
    assert world.auth.accounts.login("zhao", PASSWORD).user is not None


def test_unknown_and_disabled_users_fail_like_a_wrong_password(world: World) -> None:
    assert world.auth.accounts.login("nobody", PASSWORD).failure == "unknown"
    user = world.user("sun")
    world.auth.users.update(user.id, disabled=True)
    assert world.auth.accounts.login("sun", PASSWORD).failure == "disabled"


# --- sessions ----------------------------------------------------------------------------------


def test_a_session_ends_when_idle(world: World) -> None:
    user = world.user("zhou")
    token, session = world.auth.sessions.create(user.id)
    assert principal_of(world, cookie=token) is not None
    world.clock.advance(minutes=29)
    assert principal_of(world, cookie=token) is not None  # use refreshes the idle timer
    world.clock.advance(minutes=29)
    found = principal_of(world, cookie=token)
    assert found is not None and found.public_id == session.public_id
    world.clock.advance(minutes=30)
    assert principal_of(world, cookie=token) is None


def test_a_session_ends_after_its_lifetime_even_when_used(world: World) -> None:
    user = world.user("wu")
    token, _ = world.auth.sessions.create(user.id)
    for _ in range(12 * 3):
        world.clock.advance(minutes=20)
        alive = principal_of(world, cookie=token)
        if world.clock.now < T0 + timedelta(hours=12):
            assert alive is not None
    assert principal_of(world, cookie=token) is None


def test_revoked_sessions_and_disabled_users_are_out(world: World) -> None:
    user = world.user("zheng", ("clinician", world.hospital_a))
    token, session = world.auth.sessions.create(user.id)
    other, _ = world.auth.sessions.create(user.id)
    principal = principal_of(world, cookie=token)
    assert principal is not None and principal.csrf_token == session.csrf_token
    assert principal.permissions == {"a": frozenset({"view"})}
    assert world.auth.sessions.revoke(session.public_id)
    assert principal_of(world, cookie=token) is None
    assert principal_of(world, cookie=other) is not None
    world.auth.users.update(user.id, disabled=True)
    assert principal_of(world, cookie=other) is None


def test_a_password_change_ends_the_other_sessions_and_tokens(world: World) -> None:
    user = world.user("feng")
    keep, kept = world.auth.sessions.create(user.id)
    drop, _ = world.auth.sessions.create(user.id)
    bearer, _ = world.auth.tokens.issue(user.id)
    world.auth.accounts.set_password(user.id, "Another-Pass-7", must_change=False,
                                     keep_session=kept.public_id)
    assert principal_of(world, cookie=keep) is not None
    assert principal_of(world, cookie=drop) is None
    assert principal_of(world, authorization=f"Bearer {bearer}") is None


# --- bearer tokens -----------------------------------------------------------------------------


def test_tokens_expire_are_revoked_and_cannot_be_tampered_with(world: World) -> None:
    user = world.user("he", ("technician", world.hospital_b))
    token, issued = world.auth.tokens.issue(user.id)
    found = principal_of(world, authorization=f"Bearer {token}")
    assert found is not None and found.kind == "token" and found.name == "he"
    assert found.public_id == issued.public_id and found.csrf_token is None
    assert principal_of(world, authorization=f"Bearer {token[:-1]}{'y' if token.endswith('x') else 'x'}") is None
    assert principal_of(world, authorization=f"Bearer {token}x") is None
    assert principal_of(world, authorization="Bearer") is None
    assert principal_of(world, authorization=f"Token {token}") is None
    world.clock.advance(minutes=59)
    assert principal_of(world, authorization=f"bearer {token}") is not None
    world.clock.advance(minutes=1)
    assert principal_of(world, authorization=f"Bearer {token}") is None
    second, issued2 = world.auth.tokens.issue(user.id)
    assert world.auth.tokens.revoke(issued2.public_id)
    assert principal_of(world, authorization=f"Bearer {second}") is None


def test_an_explicit_bad_credential_is_not_rescued_by_a_cookie(world: World) -> None:
    user = world.user("lv")
    cookie, _ = world.auth.sessions.create(user.id)
    assert principal_of(world, cookie=cookie, authorization="Bearer nope") is None


# --- API keys ----------------------------------------------------------------------------------


def test_api_keys_hold_their_own_permissions_on_their_tenants(world: World) -> None:
    key, record = world.auth.api_keys.create("CT 上传", ["upload"], tenants=["a"],
                                             created_by="root")
    assert key.startswith(f"ak_{record.id}_")
    for headers in ({"authorization": f"Bearer {key}"}, {"x-api-key": key}):
        principal = principal_of(world, **headers)
        assert principal is not None and principal.kind == "api-key"
        assert principal.name == "CT 上传" and principal.public_id == record.id
        assert principal.allows("upload", "a")
        assert not principal.allows("upload", "b") and not principal.allows("view", "a")
    everywhere, _ = world.auth.api_keys.create("RIS", ["view"], tenants=None, created_by="root")
    ris = principal_of(world, authorization=f"Bearer {everywhere}")
    assert ris is not None and ris.allows("view", "any-tenant")


def test_api_keys_in_basic_form(world: World) -> None:
    key, record = world.auth.api_keys.create("DR 设备", ["upload"], tenants=["a"],
                                             created_by="root")

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert principal_of(world, authorization=basic(record.id, key)) is not None
    assert principal_of(world, authorization=basic("0123456789abcdef", key)) is None
    assert principal_of(world, authorization=basic("someone", PASSWORD)) is None
    assert principal_of(world, authorization="Basic !!!") is None


def test_api_keys_revoked_expired_tampered(world: World) -> None:
    key, record = world.auth.api_keys.create("tmp", ["view"], tenants=["a"], created_by="root",
                                             expires_at=T0 + timedelta(days=1))
    key_id, secret = key[3:19], key[20:]
    tampered = secret[:-1] + ("B" if secret.endswith("A") else "A")
    assert principal_of(world, **{"x-api-key": f"ak_{key_id}_{tampered}"}) is None
    assert principal_of(world, **{"x-api-key": f"ak_{'0' * 16}_{secret}"}) is None
    world.clock.advance(days=1)
    assert principal_of(world, **{"x-api-key": key}) is None
    other, rec2 = world.auth.api_keys.create("tmp2", ["view"], tenants=["a"], created_by="root")
    assert principal_of(world, **{"x-api-key": other}) is not None
    assert world.auth.api_keys.revoke(rec2.id).revoked_at == world.clock.now
    assert principal_of(world, **{"x-api-key": other}) is None
    assert record.id in {k.id for k in world.auth.api_keys.list()}


def test_api_key_validation(world: World) -> None:
    keys = world.auth.api_keys
    with pytest.raises(InvalidInput, match="unknown permission"):
        keys.create("x", ["teleport"], tenants=None, created_by="r")
    with pytest.raises(InvalidInput):
        keys.create("x", [], tenants=None, created_by="r")
    with pytest.raises(InvalidInput):
        keys.create("x", ["view"], tenants=["Not A Tenant"], created_by="r")
    with pytest.raises(InvalidInput):
        keys.create("x", ["view"], tenants=None, created_by="r", expires_at=T0)


def test_grants_on_units_that_do_not_exist_are_refused(world: World) -> None:
    user = world.user("qin")
    with pytest.raises(InvalidInput):
        world.auth.users.set_grants(user.id, [Grant("clinician", 9999)], by="t")
    with pytest.raises(InvalidInput):
        world.auth.users.set_grants(user.id, [Grant("wizard", world.hospital_a.id)], by="t")
