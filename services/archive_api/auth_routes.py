"""``/api/auth``: log in and out, who am I, change my password, bearer tokens, and the door's
``auth_request`` check.

The session cookie is ``archive_session``: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and
``Secure`` when the door says the request came over HTTPS (``X-Forwarded-Proto: https``). It has
no ``Max-Age`` (it goes when the browser closes; the server ends it after the idle timeout or
the absolute lifetime anyway). A failed login never says whether the user exists; a locked
account says until when.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, ValidationError

from archive_audit.events import Action, ActorKind, AuditEvent, Outcome, Recorder
from archive_auth.accounts import LoginResult
from archive_auth.authenticate import SESSION_COOKIE
from archive_auth.decide import SAFE_METHODS, csrf_ok, decide
from archive_auth.errors import Forbidden, InvalidInput, LoginFailed
from archive_auth.principal import Principal
from archive_auth.service import AuthService
from archive_auth.users import User

from .authz import WWW_AUTHENTICATE, Authz, client_ip
from .camel import CamelModel


class UserOut(CamelModel):
    id: int
    username: str
    display_name: str
    disabled: bool
    must_change_password: bool
    locked: bool
    locked_until: datetime | None
    failed_count: int
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User, now: datetime) -> "UserOut":
        locked = user.locked_until is not None and now < user.locked_until
        return cls(id=user.id, username=user.username, display_name=user.display_name,
                   disabled=user.disabled, must_change_password=user.must_change_password,
                   locked=locked, locked_until=user.locked_until if locked else None,
                   failed_count=user.failed_count, created_at=user.created_at,
                   last_login_at=user.last_login_at)


class LoginIn(CamelModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(CamelModel):
    user: UserOut
    csrf_token: str = Field(description="Send as X-CSRF-Token with every unsafe request")
    expires_at: datetime = Field(description="The session's absolute end")
    idle_minutes: float
    must_change_password: bool


class MeOut(CamelModel):
    kind: Literal["session", "token", "api-key", "anonymous"]
    name: str
    user: UserOut | None
    permissions: dict[str, list[str]] = Field(description='Tenant ("*": every tenant) → '
                                              "permissions")
    tenant: str = Field(description="This archive's tenant")
    csrf_token: str | None
    session: str | None = Field(description="The credential's public id")
    must_change_password: bool


class PasswordIn(CamelModel):
    old: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


def _is_https(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip().lower() == "https"


def header_value(text: str) -> str:
    """A name as an HTTP header value: percent-encoded UTF-8 beyond printable ASCII."""
    return quote(text, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def identity(principal: Principal) -> dict[str, str]:
    """Who the check found, as headers for the door's audit log (nginx's ``auth_request_set``
    takes them from an allowed and from a refused answer alike, so a refused request is
    counted under its caller, not as anonymous)."""
    return {"X-Archive-User": header_value(principal.name),
            "X-Archive-Session": principal.public_id or "-",
            "X-Archive-Kind": principal.actor_kind}


def router(auth: AuthService, authz: Authz, recorder: Recorder, *,
           decision_cache_seconds: int = 5) -> APIRouter:
    """``decision_cache_seconds``: how long the door may keep an answer of the check
    (``Archive.Door.AuthCacheSeconds``)."""
    api = APIRouter(prefix="/api/auth", tags=["auth"])
    now = auth.clock
    settings = auth.settings

    def event(request: Request, action: Action, outcome: Outcome, actor: str,
              actor_kind: ActorKind, session: str | None = None, **detail: Any) -> None:
        recorder.record(AuditEvent(action=action, outcome=outcome, actor=actor,
                                   actor_kind=actor_kind, source_ip=client_ip(request),
                                   tenant=authz.tenant, session=session,
                                   resource=f"{request.method} {request.url.path}",
                                   detail=detail))

    def check_login(request: Request, username: str, password: str, via: str) -> User:
        """The user, or :class:`LoginFailed` after recording why."""
        result: LoginResult = auth.accounts.login(username, password)
        if result.user is not None:
            return result.user
        event(request, "login-failed", "failure", username, "anonymous", via=via,
              reason=result.failure, failed_count=result.failed_count)
        if result.locked_now:
            event(request, "lockout", "failure", username, "user", via=via,
                  locked_until=result.locked_until.isoformat() if result.locked_until else None)
        if result.failure == "locked" and result.locked_until is not None:
            until = result.locked_until
            raise LoginFailed(
                f"账户已被锁定，请于 {until:%Y-%m-%d %H:%M} UTC 后重试",
                f"the account is locked until {until:%Y-%m-%d %H:%M} UTC", code="locked",
                lockedUntil=until.isoformat())
        raise LoginFailed("用户名或密码错误", "wrong username or password")

    @api.post("/login", response_model=LoginOut, summary="Log in: a session cookie and its "
              "CSRF token", responses={401: {"description": "Wrong credentials or locked"}})
    def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
        if not settings.enabled:
            raise InvalidInput("安全功能已关闭，无需登录",
                               "security is off (Archive.Security.Enabled): nothing to log in to",
                               code="security-off")
        user = check_login(request, body.username, body.password, "login")
        token, session = auth.sessions.create(user.id, source_ip=client_ip(request))
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                            secure=_is_https(request))
        response.headers["Cache-Control"] = "no-store"
        event(request, "login", "success", user.username, "user", session=session.public_id,
              via="login")
        return LoginOut(user=UserOut.of(user, now()), csrf_token=session.csrf_token,
                        expires_at=session.expires_at,
                        idle_minutes=settings.session_idle_minutes,
                        must_change_password=user.must_change_password)

    @api.post("/logout", status_code=204, response_class=Response,
              summary="End this session (or revoke this bearer token) and clear the cookie")
    def logout(request: Request) -> Response:
        principal = authz.principal_of(request) if settings.enabled else None
        answer = Response(status_code=204)
        answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                             secure=_is_https(request))
        if principal is None or principal.public_id is None:
            return answer
        # CSRF applies: a forged logout is a nuisance, not harmless on a shared workstation.
        if not csrf_ok(principal, request.method, request.headers):
            authz.denied(request, principal, "csrf", None)
            raise Forbidden("缺少或错误的 CSRF 令牌", "missing or wrong X-CSRF-Token",
                            code="csrf")
        if principal.kind == "session":
            auth.sessions.revoke(principal.public_id)
        elif principal.kind == "token":
            auth.tokens.revoke(principal.public_id)
        else:
            return answer
        event(request, "logout", "success", principal.name, principal.actor_kind,
              session=principal.public_id, kind=principal.kind)
        return answer

    @api.get("/me", response_model=MeOut, summary="Who this credential is and what it may do")
    def me(principal: Principal = Depends(authz.authenticated())) -> MeOut:
        user = auth.users.get(principal.user_id) if principal.user_id is not None else None
        return MeOut(kind=principal.kind, name=principal.name,
                     user=UserOut.of(user, now()) if user else None,
                     permissions=principal.describe(), tenant=authz.tenant,
                     csrf_token=principal.csrf_token, session=principal.public_id,
                     must_change_password=principal.must_change_password)

    @api.post("/password", status_code=204, response_class=Response,
              summary="Change my password (ends my other sessions and tokens)",
              responses={401: {"description": "Wrong old password"},
                         422: {"description": "The new password breaks a rule"}})
    def change_password(body: PasswordIn, request: Request,
                        principal: Principal = Depends(authz.authenticated())) -> Response:
        if principal.user_id is None:
            raise InvalidInput("只有用户可以修改密码", "only users have passwords",
                               code="not-a-user")
        user = auth.users.get(principal.user_id)
        check_login(request, user.username, body.old, "password-change")
        if body.old == body.new:
            raise InvalidInput("新密码不能与旧密码相同", "the new password must differ from the old",
                               code="same-password")
        keep = principal.public_id if principal.kind == "session" else None
        auth.accounts.set_password(user.id, body.new, must_change=False, keep_session=keep)
        event(request, "user-admin", "success", user.username, "user",
              session=principal.public_id, operation="password-change", user_id=user.id)
        return Response(status_code=204)

    @api.post("/token", response_model=TokenOut,
              summary="A bearer token for username and password (form or JSON)",
              openapi_extra={"requestBody": {"content": {
                  "application/json": {"schema": LoginIn.model_json_schema()},
                  "application/x-www-form-urlencoded": {"schema": LoginIn.model_json_schema()},
              }, "required": True}})
    async def token(request: Request) -> TokenOut:
        body = await _credentials_body(request)
        user = await asyncio.to_thread(check_login, request, body.username, body.password,
                                       "token")
        secret, issued = await asyncio.to_thread(auth.tokens.issue, user.id)
        event(request, "login", "success", user.username, "user", session=issued.public_id,
              via="token")
        seconds = math.floor((issued.expires_at - issued.created_at).total_seconds())
        return TokenOut(access_token=secret, expires_in=seconds)

    @api.get("/check", status_code=204, response_class=Response,
             summary="nginx auth_request: 204 allows, 401 asks for a credential, 403 refuses",
             responses={401: {"description": "No or invalid credential"},
                        403: {"description": "Not allowed, or CSRF failed"}})
    def check(request: Request) -> Response:
        area = request.headers.get("x-door-area", "")
        tenant = request.headers.get("x-door-tenant") or authz.tenant
        method = (request.headers.get("x-original-method") or "GET").upper()
        cache = str(decision_cache_seconds) if method in SAFE_METHODS else "0"
        if not settings.enabled:
            return Response(status_code=204, headers={
                "X-Archive-User": "anonymous", "X-Archive-Session": "-",
                "X-Archive-Kind": "anonymous", "X-Accel-Expires": cache})
        principal = authz.principal_of(request)
        decision = decide(principal, area, tenant, method, request.headers)
        if decision.status == 401:
            return Response(status_code=401, headers={"WWW-Authenticate": WWW_AUTHENTICATE,
                                                      "X-Accel-Expires": "0"})
        assert principal is not None
        if decision.status == 403:
            authz.denied(request, principal, decision.reason, decision.permission,
                         tenant=tenant, resource=f"{method} "
                         f"{request.headers.get('x-original-uri', '')}"[:2000])
            return Response(status_code=403, headers={**identity(principal),
                                                      "X-Accel-Expires": cache})
        return Response(status_code=204, headers={**identity(principal),
                                                  "X-Accel-Expires": cache})

    return api


async def _credentials_body(request: Request) -> LoginIn:
    """username and password from a JSON body or an HTML form (OAuth 2 password grant)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    data: Any
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            data = {k: v[0] for k, v in form.items()}
        else:
            data = json.loads(raw or b"null")
        return LoginIn.model_validate(data)
    except (ValueError, ValidationError):
        raise InvalidInput("需要用户名和密码", "username and password are required (JSON or "
                           "form)", code="invalid-body") from None

