"""Authentication and authorization of ``/api`` routes: a FastAPI dependency per permission.

``Depends(authz.require("view"))`` authenticates the request (cookie, bearer token or API key,
:meth:`archive_auth.Authenticator.authenticate`), applies the CSRF rule to cookie requests with
an unsafe method, refuses a user who must change the password first, checks the permission on
this archive's tenant and hands the :class:`~archive_auth.Principal` to the route. 401 answers
carry ``WWW-Authenticate: Bearer realm="archive"``; 403 answers are recorded in the audit trail
(``access-denied``). :func:`install` registers the one translator of :mod:`archive_auth`'s
errors into RFC 9457 problems (beside :func:`archive_api.errors.install`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from archive_audit.events import Action, AuditEvent, Outcome, Recorder
from archive_auth.authenticate import Authenticator
from archive_auth.decide import csrf_ok
from archive_auth.errors import AuthError, Forbidden, Unauthenticated
from archive_auth.principal import Principal

from .errors import problem

WWW_AUTHENTICATE = 'Bearer realm="archive"'


class Activity(Protocol):
    """Records what a principal did (:meth:`Authz.record`); routers take one to audit their
    actions."""

    def __call__(self, request: Request, principal: Principal, action: Action, *,
                 outcome: Outcome = "success", resource: str | None = None,
                 patient_id: str | None = None, patient_name: str | None = None,
                 study_uid: str | None = None,
                 detail: Mapping[str, Any] | None = None) -> None: ...


def install(app: FastAPI) -> None:
    """Answer every :class:`archive_auth.errors.AuthError` as a problem: ``detail`` in Chinese
    and English, ``code`` naming the rule, ``detailZh``/``detailEn`` for clients that show one
    language."""

    async def auth_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        response = problem(exc.status, str(exc), request.url.path, code=exc.code,
                           detailZh=exc.message_zh, detailEn=exc.message_en, **exc.extensions)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response

    app.add_exception_handler(AuthError, auth_error)


def client_ip(request: Request) -> str | None:
    """The client's address as the door saw it: the last ``X-Forwarded-For`` entry (the one
    nginx's ``$proxy_add_x_forwarded_for`` appended; earlier ones are the client's own claim)."""
    forwarded = [p.strip() for p in request.headers.get("x-forwarded-for", "").split(",")]
    forwarded = [p for p in forwarded if p]
    if forwarded:
        return forwarded[-1][:64]
    return request.client.host if request.client else None


def not_authenticated() -> Unauthenticated:
    return Unauthenticated("需要登录", "authentication required: log in, or send a bearer "
                                      "token or an API key")


class Authz:
    """The dependencies of every protected route, for one archive (``tenant``)."""

    def __init__(self, authenticator: Authenticator, recorder: Recorder, *, tenant: str,
                 enabled: bool = True) -> None:
        self.authenticator = authenticator
        self.recorder = recorder
        self.tenant = tenant
        self.enabled = enabled

    def principal_of(self, request: Request) -> Principal | None:
        if not self.enabled:
            return Principal.anonymous()
        return self.authenticator.authenticate(request.headers, request.cookies)

    def record(self, request: Request, principal: Principal, action: Action, *,
               outcome: Outcome = "success", resource: str | None = None,
               patient_id: str | None = None, patient_name: str | None = None,
               study_uid: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """Record what ``principal`` did through this request, on this archive's tenant
        (a blocking database write: call it from a thread in async routes)."""
        self.recorder.record(AuditEvent(
            action=action, outcome=outcome, actor=principal.name,
            actor_kind=principal.actor_kind, source_ip=client_ip(request), tenant=self.tenant,
            session=principal.public_id, patient_id=patient_id, patient_name=patient_name,
            study_uid=study_uid, resource=resource or f"{request.method} {request.url.path}",
            detail=dict(detail or {})))

    def denied(self, request: Request, principal: Principal, reason: str,
               permission: str | None, *, tenant: str | None = None,
               resource: str | None = None) -> None:
        """Record an ``access-denied`` event."""
        self.recorder.record(AuditEvent(
            action="access-denied", outcome="denied", actor=principal.name,
            actor_kind=principal.actor_kind, source_ip=client_ip(request),
            tenant=tenant or self.tenant, session=principal.public_id,
            resource=resource or f"{request.method} {request.url.path}",
            detail={"reason": reason, **({"permission": permission} if permission else {})}))

    def authenticated(self, *, csrf: bool = True,
                      allow_password_change: bool = True) -> Callable[[Request], Principal]:
        """A dependency: any valid credential (``/api/auth/me``, logout, password change)."""

        def dependency(request: Request) -> Principal:
            principal = self.principal_of(request)
            if principal is None:
                raise not_authenticated()
            if csrf and not csrf_ok(principal, request.method, request.headers):
                self.denied(request, principal, "csrf", None)
                raise Forbidden("缺少或错误的 CSRF 令牌",
                                "missing or wrong X-CSRF-Token for a request with the session "
                                "cookie", code="csrf")
            if not allow_password_change and principal.must_change_password:
                self.denied(request, principal, "password-change-required", None)
                raise Forbidden("请先修改密码", "change your password first",
                                code="password-change-required")
            return principal

        return dependency

    def require(self, permission: str) -> Callable[[Request], Principal]:
        """A dependency: a valid credential holding ``permission`` on this tenant."""
        base = self.authenticated(allow_password_change=False)

        def dependency(request: Request) -> Principal:
            principal = base(request)
            if not principal.allows(permission, self.tenant):
                self.denied(request, principal, "forbidden", permission)
                raise Forbidden(f"没有“{permission}”权限",
                                f"this needs the permission {permission!r} on tenant "
                                f"{self.tenant!r}", code="forbidden")
            return principal

        return dependency

    def require_anywhere(self, permission: str) -> Callable[[Request], Principal]:
        """A dependency: ``permission`` on at least one tenant (the regional administration
        routes, which then limit what they show and change to those tenants)."""
        base = self.authenticated(allow_password_change=False)

        def dependency(request: Request) -> Principal:
            principal = base(request)
            if not principal.tenants_with(permission):
                self.denied(request, principal, "forbidden", permission)
                raise Forbidden(f"没有“{permission}”权限",
                                f"this needs the permission {permission!r}", code="forbidden")
            return principal

        return dependency
