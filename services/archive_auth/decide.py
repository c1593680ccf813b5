"""The door's question: may this principal do this method in this area of this tenant?

Areas are set statically per nginx location (``X-Door-Area``) and each needs one permission.
The CSRF rule: a cookie-authenticated request with an unsafe method must carry ``X-CSRF-Token``
equal to its session's; Orthanc Explorer (area ``orthanc-admin``) sends no token, so there an
``Origin`` equal to the request's own origin does instead. Bearer tokens and API keys are never
sent by a browser on its own, so they need neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .credentials import same
from .principal import Principal

AREAS: Final[Mapping[str, str]] = {
    "dicomweb-view": "view",
    "dicomweb-download": "download",
    "dicomweb-upload": "upload",
    "viewer": "view",
    "orthanc-admin": "admin",
}
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Answers to a principal who still has to change the password allow nothing but that.
PASSWORD_CHANGE = "password-change-required"

Reason = Literal["allowed", "unauthenticated", "unknown-area", "forbidden", "csrf",
                 "password-change-required"]


@dataclass(frozen=True)
class Decision:
    status: Literal[204, 401, 403]
    reason: Reason
    permission: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 204


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def own_origin(headers: Mapping[str, str]) -> str | None:
    """The origin the request was made to, from what the door forwards (``X-Forwarded-Proto``
    and ``X-Forwarded-Host`` or ``Host``)."""
    h = _lower(headers)
    host = (h.get("x-forwarded-host") or h.get("host") or "").split(",")[0].strip()
    if not host:
        return None
    proto = (h.get("x-forwarded-proto") or "http").split(",")[0].strip().lower()
    return f"{proto}://{host}".lower()


def csrf_ok(principal: Principal, method: str, headers: Mapping[str, str], *,
            allow_same_origin: bool = False) -> bool:
    """The CSRF rule (module docstring); ``allow_same_origin`` is the ``orthanc-admin``
    exception."""
    if principal.kind != "session" or method.upper() in SAFE_METHODS:
        return True
    h = _lower(headers)
    sent = h.get("x-csrf-token", "")
    if sent and principal.csrf_token and same(sent, principal.csrf_token):
        return True
    if allow_same_origin:
        origin = h.get("origin", "").strip().lower()
        expected = own_origin(headers)
        return bool(origin) and origin != "null" and origin == expected
    return False


def decide(principal: Principal | None, area: str, tenant: str, method: str,
           headers: Mapping[str, str]) -> Decision:
    """The door's answer for one request (``GET /api/auth/check``)."""
    if principal is None:
        return Decision(401, "unauthenticated")
    permission = AREAS.get(area)
    if permission is None:
        return Decision(403, "unknown-area")
    if principal.must_change_password:
        return Decision(403, "password-change-required", permission)
    if not tenant or not principal.allows(permission, tenant):
        return Decision(403, "forbidden", permission)
    if not csrf_ok(principal, method, headers, allow_same_origin=area == "orthanc-admin"):
        return Decision(403, "csrf", permission)
    return Decision(204, "allowed", permission)
