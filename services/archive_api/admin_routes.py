"""``/api/users``, ``/api/roles``, ``/api/org-units``, ``/api/api-keys``: the region's
administration of who may do what.

Scope: ``user-admin`` on the region (``"*"``) manages everything; ``user-admin`` on some tenants
(a hospital administrator) sees and manages users whose grants all lie in those tenants (and
users with no grant yet), grants on units of those tenants, and API keys for those tenants.
Nobody hands out more than they hold: a granted role's permissions (and an API key's) must be
held by the granter on that tenant, so only ``admin`` grants ``admin``. Roles and org units are
changed by region ``admin`` only; ``user-admin`` reads them. The last enabled region
administrator cannot be deleted, disabled or lose the role. Every change is recorded
(``user-admin``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from archive_audit.events import AuditEvent, Recorder
from archive_auth.api_keys import ApiKey
from archive_auth.errors import Conflict, Forbidden, NotFound
from archive_auth.org import OrgUnit
from archive_auth.permissions import ADMIN, ALL_TENANTS, expand, ordered
from archive_auth.principal import Principal
from archive_auth.roles import Role
from archive_auth.service import AuthService
from archive_auth.users import Grant

from .auth_routes import UserOut
from .authz import Authz, client_ip
from .camel import CamelModel, StrictCamelModel

USER_ADMIN = "user-admin"


class GrantIO(CamelModel):
    role_id: str = Field(max_length=64)
    unit_id: int


class UserDetail(UserOut):
    grants: list[GrantIO]
    permissions: dict[str, list[str]]


class UserCreate(CamelModel):
    username: str = Field(min_length=1, max_length=150)
    display_name: str = Field(default="", max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    must_change_password: bool = True
    grants: list[GrantIO] = Field(default_factory=list, max_length=200)


class UserPatch(CamelModel):
    display_name: str | None = Field(default=None, max_length=200)
    disabled: bool | None = None
    must_change_password: bool | None = None


class PasswordReset(CamelModel):
    password: str = Field(min_length=1, max_length=1024)
    must_change_password: bool = True


class RoleOut(CamelModel):
    id: str
    name: str
    name_en: str
    permissions: list[str]
    builtin: bool

    @classmethod
    def of(cls, role: Role) -> "RoleOut":
        return cls(id=role.id, name=role.name, name_en=role.name_en,
                   permissions=list(role.permissions), builtin=role.builtin)


class RoleCreate(CamelModel):
    id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    permissions: list[str] = Field(max_length=20)


class RolePatch(CamelModel):
    name: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    permissions: list[str] | None = Field(default=None, max_length=20)


class OrgUnitOut(CamelModel):
    id: int
    kind: str
    name: str
    name_en: str | None
    parent_id: int | None
    tenant: str | None = Field(description="Set on this unit")
    scope: str | None = Field(description='The tenant grants on it apply to ("*": every one)')
    created_at: datetime

    @classmethod
    def of(cls, unit: OrgUnit) -> "OrgUnitOut":
        return cls(**unit.__dict__)


class OrgUnitCreate(CamelModel):
    kind: Literal["hospital", "campus", "clinic", "department"]
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    parent_id: int
    tenant: str | None = Field(default=None, max_length=32)


class OrgUnitPatch(StrictCamelModel):

    name: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    parent_id: int | None = None
    tenant: str | None = Field(default=None, max_length=32)


class ApiKeyOut(CamelModel):
    id: str
    name: str
    permissions: list[str]
    tenants: list[str] | None = Field(description="null: every tenant")
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyOut":
        return cls(id=key.id, name=key.name, permissions=list(key.permissions),
                   tenants=None if key.tenants is None else list(key.tenants),
                   expires_at=key.expires_at, created_by=key.created_by,
                   created_at=key.created_at, revoked_at=key.revoked_at)


class ApiKeyCreate(CamelModel):
    name: str = Field(max_length=200)
    permissions: list[str] = Field(max_length=20)
    tenants: list[str] | None = Field(default=None, max_length=100,
                                      description="null: every tenant")
    expires_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The whole key, shown this once: ak_<id>_<secret>")


def _scope(principal: Principal) -> frozenset[str]:
    return principal.tenants_with(USER_ADMIN)


def _within(scope: frozenset[str], tenant: str | None) -> bool:
    if tenant is None:
        return ALL_TENANTS in scope
    return ALL_TENANTS in scope or (tenant != ALL_TENANTS and tenant in scope)


def router(auth: AuthService, authz: Authz, recorder: Recorder) -> APIRouter:
    api = APIRouter(prefix="/api")
    users, org, roles, keys = auth.users, auth.org, auth.roles, auth.api_keys
    base = authz.authenticated(allow_password_change=False)
    user_admin = authz.require_anywhere(USER_ADMIN)

    def region(permission: str) -> Callable[[Request], Principal]:
        def dependency(request: Request) -> Principal:
            principal = base(request)
            if not principal.allows(permission, ALL_TENANTS):
                authz.denied(request, principal, "forbidden", permission, tenant=ALL_TENANTS)
                raise Forbidden(f"需要区域级“{permission}”权限",
                                f"this needs the permission {permission!r} on every tenant",
                                code="forbidden")
            return principal
        return dependency

    admin = region(ADMIN)

    def record(request: Request, principal: Principal, operation: str, **detail: Any) -> None:
        recorder.record(AuditEvent(
            action="user-admin", outcome="success", actor=principal.name,
            actor_kind=principal.actor_kind, source_ip=client_ip(request),
            session=principal.public_id, resource=f"{request.method} {request.url.path}",
            unit=str(detail["unit_id"]) if detail.get("unit_id") is not None else None,
            detail={"operation": operation, **detail}))

    def refuse(request: Request, principal: Principal, why_zh: str, why_en: str) -> Forbidden:
        authz.denied(request, principal, "out-of-scope", USER_ADMIN)
        return Forbidden(why_zh, why_en, code="out-of-scope")

    # -- scope helpers -------------------------------------------------------------------------

    def unit_scopes() -> dict[int, str | None]:
        return {u.id: u.scope for u in org.list()}

    def grant_tenants(grants: Iterable[Grant], scopes: dict[int, str | None]) -> set[str | None]:
        return {scopes.get(g.unit_id) for g in grants}

    def manageable(principal: Principal, user_id: int) -> bool:
        scope = _scope(principal)
        target = users.permissions(user_id)
        if any(ADMIN in perms for perms in target.values()) and not principal.allows(
                ADMIN, ALL_TENANTS):
            return False
        if ALL_TENANTS in scope:
            return True
        tenants = grant_tenants(users.grants(user_id), unit_scopes())
        return all(_within(scope, t) for t in tenants)

    def check_manageable(request: Request, principal: Principal, user_id: int) -> None:
        users.get(user_id)  # 404 first
        if not manageable(principal, user_id):
            raise refuse(request, principal, "无权管理该用户",
                         "this user has roles outside the tenants you administer")

    def check_grant_changes(request: Request, principal: Principal, old: Iterable[Grant],
                            new: Iterable[Grant]) -> None:
        scope = _scope(principal)
        scopes = unit_scopes()
        role_perms = {r.id: frozenset(r.permissions) for r in roles.list()}
        for grant in set(old) ^ set(new):
            tenant = scopes.get(grant.unit_id)
            if grant.unit_id not in scopes or grant.role_id not in role_perms:
                continue  # the store names the unknown unit or role
            if not _within(scope, tenant):
                raise refuse(request, principal, "无权在该机构授予角色",
                             f"org unit {grant.unit_id} is outside the tenants you administer")
            holds = principal.on(tenant or ALL_TENANTS)
            if not expand(role_perms[grant.role_id]) <= holds:
                raise refuse(request, principal, "不能授予自己没有的权限",
                             f"role {grant.role_id!r} holds permissions you do not hold there")

    def would_remove_last_admin(user_id: int, new: Iterable[Grant] | None) -> bool:
        """True when ``user_id`` is the last enabled region admin and would stop being one
        (``new`` None: deleted or disabled)."""
        region_unit = org.region()
        if region_unit is None:
            return False
        admin_roles = {r.id for r in roles.list() if ADMIN in r.permissions}

        def is_admin(grants: Iterable[Grant]) -> bool:
            return any(g.unit_id == region_unit.id and g.role_id in admin_roles for g in grants)

        if not is_admin(users.grants(user_id)) or users.get(user_id).disabled:
            return False
        if new is not None and is_admin(new):
            return False
        return users.count_admins() <= 1

    def last_admin() -> Conflict:
        return Conflict("不能移除最后一位系统管理员",
                        "this is the last enabled region administrator", code="last-admin")

    def detail(user_id: int) -> UserDetail:
        user = users.get(user_id)
        perms = users.permissions(user_id)
        return UserDetail(**UserOut.of(user, auth.clock()).model_dump(),
                          grants=[GrantIO(role_id=g.role_id, unit_id=g.unit_id)
                                  for g in users.grants(user_id)],
                          permissions={t: ordered(expand(p)) for t, p in sorted(perms.items())})

    # -- users ---------------------------------------------------------------------------------

    @api.get("/users", response_model=list[UserOut], tags=["users"],
             summary="Users you administer (all of them for a region administrator)")
    def list_users(principal: Principal = Depends(user_admin)) -> list[UserOut]:
        scope = _scope(principal)
        now = auth.clock()
        if ALL_TENANTS in scope:
            return [UserOut.of(u, now) for u in users.list()]
        units = [uid for uid, t in unit_scopes().items() if t is not None and _within(scope, t)]
        visible = users.users_with_grants_on(units) | users.users_without_grants()
        return [UserOut.of(u, now) for u in users.list(user_ids=visible)]

    @api.post("/users", response_model=UserDetail, status_code=201, tags=["users"],
              summary="Create a user (password rules apply), optionally with grants")
    def create_user(body: UserCreate, request: Request,
                    principal: Principal = Depends(user_admin)) -> UserDetail:
        new = [Grant(g.role_id, g.unit_id) for g in body.grants]
        check_grant_changes(request, principal, [], new)
        user = auth.accounts.create_user(body.username, body.display_name, body.password,
                                         must_change_password=body.must_change_password)
        if new:
            users.set_grants(user.id, new, by=principal.name)
        record(request, principal, "user-create", user_id=user.id, username=user.username,
               grants=[g.__dict__ for g in new])
        return detail(user.id)

    @api.get("/users/{user_id}", response_model=UserDetail, tags=["users"])
    def get_user(user_id: int, request: Request,
                 principal: Principal = Depends(user_admin)) -> UserDetail:
        check_manageable(request, principal, user_id)
        return detail(user_id)

    @api.patch("/users/{user_id}", response_model=UserDetail, tags=["users"],
               summary="Rename, disable (ends its sessions) or enable a user")
    def patch_user(user_id: int, body: UserPatch, request: Request,
                   principal: Principal = Depends(user_admin)) -> UserDetail:
        check_manageable(request, principal, user_id)
        if body.disabled and principal.user_id == user_id:
            raise Conflict("不能停用自己", "you cannot disable yourself", code="self")
        if body.disabled and would_remove_last_admin(user_id, None):
            raise last_admin()
        users.update(user_id, display_name=body.display_name, disabled=body.disabled,
                     must_change_password=body.must_change_password)
        record(request, principal, "user-update", user_id=user_id,
               changes=body.model_dump(exclude_none=True))
        return detail(user_id)

    @api.delete("/users/{user_id}", status_code=204, response_class=Response, tags=["users"])
    def delete_user(user_id: int, request: Request,
                    principal: Principal = Depends(user_admin)) -> Response:
        check_manageable(request, principal, user_id)
        if principal.user_id == user_id:
            raise Conflict("不能删除自己", "you cannot delete yourself", code="self")
        if would_remove_last_admin(user_id, None):
            raise last_admin()
        username = users.get(user_id).username
        users.delete(user_id)
        record(request, principal, "user-delete", user_id=user_id, username=username)
        return Response(status_code=204)

    @api.post("/users/{user_id}/unlock", response_model=UserDetail, tags=["users"],
              summary="End a lockout now")
    def unlock_user(user_id: int, request: Request,
                    principal: Principal = Depends(user_admin)) -> UserDetail:
        check_manageable(request, principal, user_id)
        users.unlock(user_id)
        record(request, principal, "user-unlock", user_id=user_id)
        return detail(user_id)

    @api.post("/users/{user_id}/password", response_model=UserDetail, tags=["users"],
              summary="Set a new password (ends the user's sessions and tokens)")
    def reset_password(user_id: int, body: PasswordReset, request: Request,
                       principal: Principal = Depends(user_admin)) -> UserDetail:
        check_manageable(request, principal, user_id)
        auth.accounts.set_password(user_id, body.password,
                                   must_change=body.must_change_password)
        users.unlock(user_id)
        record(request, principal, "password-reset", user_id=user_id)
        return detail(user_id)

    @api.get("/users/{user_id}/grants", response_model=list[GrantIO], tags=["users"])
    def get_grants(user_id: int, request: Request,
                   principal: Principal = Depends(user_admin)) -> list[GrantIO]:
        check_manageable(request, principal, user_id)
        return [GrantIO(role_id=g.role_id, unit_id=g.unit_id) for g in users.grants(user_id)]

    @api.put("/users/{user_id}/grants", response_model=list[GrantIO], tags=["users"],
             summary="Replace the user's grants (role on org unit)")
    def put_grants(user_id: int, body: list[GrantIO], request: Request,
                   principal: Principal = Depends(user_admin)) -> list[GrantIO]:
        check_manageable(request, principal, user_id)
        old = users.grants(user_id)
        new = [Grant(g.role_id, g.unit_id) for g in body]
        check_grant_changes(request, principal, old, new)
        if would_remove_last_admin(user_id, new):
            raise last_admin()
        stored = users.set_grants(user_id, new, by=principal.name)
        record(request, principal, "grants-set", user_id=user_id,
               before=[g.__dict__ for g in old], after=[g.__dict__ for g in stored])
        return [GrantIO(role_id=g.role_id, unit_id=g.unit_id) for g in stored]

    # -- roles ---------------------------------------------------------------------------------

    @api.get("/roles", response_model=list[RoleOut], tags=["roles"])
    def list_roles(principal: Principal = Depends(user_admin)) -> list[RoleOut]:
        return [RoleOut.of(r) for r in roles.list()]

    @api.post("/roles", response_model=RoleOut, status_code=201, tags=["roles"])
    def create_role(body: RoleCreate, request: Request,
                    principal: Principal = Depends(admin)) -> RoleOut:
        role = roles.create(body.id, body.name, body.name_en, body.permissions)
        record(request, principal, "role-create", role_id=role.id,
               permissions=list(role.permissions))
        return RoleOut.of(role)

    @api.patch("/roles/{role_id}", response_model=RoleOut, tags=["roles"])
    def patch_role(role_id: str, body: RolePatch, request: Request,
                   principal: Principal = Depends(admin)) -> RoleOut:
        role = roles.update(role_id, name=body.name, name_en=body.name_en,
                            permissions=body.permissions)
        record(request, principal, "role-update", role_id=role_id,
               changes=body.model_dump(exclude_none=True))
        return RoleOut.of(role)

    @api.delete("/roles/{role_id}", status_code=204, response_class=Response, tags=["roles"])
    def delete_role(role_id: str, request: Request,
                    principal: Principal = Depends(admin)) -> Response:
        roles.delete(role_id)
        record(request, principal, "role-delete", role_id=role_id)
        return Response(status_code=204)

    # -- org units -----------------------------------------------------------------------------

    @api.get("/org-units", response_model=list[OrgUnitOut], tags=["org-units"],
             summary="The organisation tree (a hospital administrator sees its tenants' units "
                     "and the region)")
    def list_units(principal: Principal = Depends(user_admin)) -> list[OrgUnitOut]:
        scope = _scope(principal)
        return [OrgUnitOut.of(u) for u in org.list()
                if ALL_TENANTS in scope or u.kind == "region" or (
                    u.scope is not None and _within(scope, u.scope))]

    @api.post("/org-units", response_model=OrgUnitOut, status_code=201, tags=["org-units"])
    def create_unit(body: OrgUnitCreate, request: Request,
                    principal: Principal = Depends(admin)) -> OrgUnitOut:
        unit = org.create(body.kind, body.name, name_en=body.name_en, parent_id=body.parent_id,
                          tenant=body.tenant)
        record(request, principal, "org-unit-create", unit_id=unit.id, kind=unit.kind,
               tenant=unit.tenant)
        return OrgUnitOut.of(unit)

    @api.patch("/org-units/{unit_id}", response_model=OrgUnitOut, tags=["org-units"])
    def patch_unit(unit_id: int, body: OrgUnitPatch, request: Request,
                   principal: Principal = Depends(admin)) -> OrgUnitOut:
        changes = body.model_dump(exclude_unset=True)
        unit = org.update(unit_id, **changes)
        record(request, principal, "org-unit-update", unit_id=unit_id,
               changes=changes)
        return OrgUnitOut.of(unit)

    @api.delete("/org-units/{unit_id}", status_code=204, response_class=Response,
                tags=["org-units"])
    def delete_unit(unit_id: int, request: Request,
                    principal: Principal = Depends(admin)) -> Response:
        org.delete(unit_id)
        record(request, principal, "org-unit-delete", unit_id=unit_id)
        return Response(status_code=204)

    # -- API keys ------------------------------------------------------------------------------

    def key_visible(scope: frozenset[str], key: ApiKey) -> bool:
        if key.tenants is None:
            return ALL_TENANTS in scope
        return all(_within(scope, t) for t in key.tenants)

    @api.get("/api-keys", response_model=list[ApiKeyOut], tags=["api-keys"])
    def list_keys(principal: Principal = Depends(user_admin)) -> list[ApiKeyOut]:
        scope = _scope(principal)
        return [ApiKeyOut.of(k) for k in keys.list() if key_visible(scope, k)]

    @api.post("/api-keys", response_model=ApiKeyCreated, status_code=201, tags=["api-keys"],
              summary="Make a key; the answer shows the whole key, this once")
    def create_key(body: ApiKeyCreate, request: Request, response: Response,
                   principal: Principal = Depends(user_admin)) -> ApiKeyCreated:
        scope = _scope(principal)
        tenants = None if body.tenants is None else sorted(set(body.tenants))
        targets = [ALL_TENANTS] if tenants is None else tenants
        for tenant in targets:
            if not _within(scope, tenant):
                raise refuse(request, principal, "无权为该租户创建 API 密钥",
                             f"tenant {tenant!r} is outside the tenants you administer")
            if not expand(body.permissions) <= principal.on(tenant):
                raise refuse(request, principal, "不能授予自己没有的权限",
                             "the key would hold permissions you do not hold")
        secret, key = keys.create(body.name, body.permissions, tenants=tenants,
                                  created_by=principal.name, expires_at=body.expires_at)
        response.headers["Cache-Control"] = "no-store"
        record(request, principal, "api-key-create", key_id=key.id, name=key.name,
               permissions=list(key.permissions), tenants=tenants)
        return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), key=secret)

    @api.delete("/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api-keys"],
                summary="Revoke a key (it stops working at once here, at the door within "
                        "Archive.Door.AuthCacheSeconds)")
    def revoke_key(key_id: str, request: Request,
                   principal: Principal = Depends(user_admin)) -> ApiKeyOut:
        key = keys.get(key_id)
        if not key_visible(_scope(principal), key):
            raise NotFound(f"API 密钥 {key_id} 不存在", f"API key {key_id} does not exist")
        revoked = keys.revoke(key_id)
        record(request, principal, "api-key-revoke", key_id=key_id, name=key.name)
        return ApiKeyOut.of(revoked)

    return api
