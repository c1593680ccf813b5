"""The exception tree of :mod:`archive_auth`.

Each class carries the HTTP status the API answers with and a message for people, Chinese first
and English complete (``message_zh``, ``message_en``); ``code`` names the rule that was broken,
for clients that translate on their own.
"""

from __future__ import annotations

from typing import Any


class AuthError(Exception):
    """Base of every error this package raises on purpose."""

    status = 400
    code = "invalid"

    def __init__(self, message_zh: str, message_en: str, *, code: str | None = None,
                 **extensions: Any) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.message_zh = message_zh
        self.message_en = message_en
        self.extensions = extensions
        if code is not None:
            self.code = code


class InvalidInput(AuthError):
    """A value the store refuses (an unknown permission, a name too long, …)."""

    status = 422


class PasswordRejected(InvalidInput):
    """A new password breaks a rule; ``code`` names it (``too-short``, ``too-simple``,
    ``contains-username``)."""


class NotFound(AuthError):
    status = 404
    code = "not-found"


class Conflict(AuthError):
    """The operation clashes with what exists (a username taken, a unit with children, …)."""

    status = 409
    code = "conflict"


class Forbidden(AuthError):
    """The caller is authenticated but may not do this."""

    status = 403
    code = "forbidden"


class LoginFailed(AuthError):
    """Wrong username or password, an unknown or disabled user, or a locked account."""

    status = 401
    code = "login-failed"


class Unauthenticated(AuthError):
    """No credential, or one that is unknown, revoked or expired."""

    status = 401
    code = "unauthenticated"
