"""One function for every credential: which one a request carries, and who that is.

Looked at in this order, and the first one present decides (a bad bearer token is not rescued
by a good cookie, so a client always learns that its explicit credential failed):

1. ``Authorization: Bearer <token>`` (``ak_…``: an API key) or ``Authorization: Basic`` with
   username = key id and password = the whole API key (devices that only do Basic);
2. ``X-API-Key: ak_…``;
3. the ``archive_session`` cookie.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .api_keys import ApiKeys, parse
from .credentials import API_KEY_PREFIX
from .principal import Principal
from .sessions import Sessions
from .tokens import AccessTokens
from .users import Users

SESSION_COOKIE = "archive_session"


@dataclass(frozen=True)
class Credential:
    kind: Literal["session", "token", "api-key"]
    secret: str


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def credential_of(headers: Mapping[str, str], cookies: Mapping[str, str]) -> Credential | None:
    """The credential a request carries (module docstring); a malformed ``Authorization``
    counts as a credential that fails (kind ``token``, empty secret)."""
    h = _lower(headers)
    authorization = h.get("authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            kind: Literal["token", "api-key"] = (
                "api-key" if value.startswith(API_KEY_PREFIX) else "token")
            return Credential(kind, value)
        if scheme.lower() == "basic" and value:
            return Credential("api-key", _basic_api_key(value))
        return Credential("token", "")
    api_key = h.get("x-api-key", "").strip()
    if api_key:
        return Credential("api-key", api_key)
    cookie = cookies.get(SESSION_COOKIE, "")
    if cookie:
        return Credential("session", cookie)
    return None


def _basic_api_key(value: str) -> str:
    """The API key of a Basic credential whose username is the key's id, else ''."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    username, _, password = decoded.partition(":")
    parts = parse(password)
    return password if parts is not None and parts[0] == username else ""


class Authenticator:
    """Resolves credentials against the control database."""

    def __init__(self, users: Users, sessions: Sessions, tokens: AccessTokens,
                 api_keys: ApiKeys) -> None:
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.api_keys = api_keys

    def authenticate(self, headers: Mapping[str, str],
                     cookies: Mapping[str, str]) -> Principal | None:
        """Who the request is, or None: no credential, or one that is unknown, revoked,
        expired, malformed, or of a disabled user."""
        credential = credential_of(headers, cookies)
        if credential is None or not credential.secret:
            return None
        if credential.kind == "api-key":
            key = self.api_keys.lookup(credential.secret)
            if key is None:
                return None
            return Principal(kind="api-key", user_id=None, name=key.name,
                             permissions=key.grants(), public_id=key.id)
        if credential.kind == "token":
            token = self.tokens.lookup(credential.secret)
            if token is None:
                return None
            return self._user_principal("token", token.user_id, token.public_id, None)
        session = self.sessions.lookup(credential.secret)
        if session is None:
            return None
        return self._user_principal("session", session.user_id, session.public_id,
                                    session.csrf_token)

    def _user_principal(self, kind: Literal["session", "token"], user_id: int, public_id: str,
                        csrf_token: str | None) -> Principal | None:
        record = self.users.login_record_of(user_id)
        user = record.user
        if user.disabled:
            return None
        return Principal(kind=kind, user_id=user.id, name=user.username,
                         permissions=self.users.permissions(user.id), public_id=public_id,
                         csrf_token=csrf_token, display_name=user.display_name,
                         must_change_password=user.must_change_password)
