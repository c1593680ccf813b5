"""``Archive.Security``: sessions, tokens, lockout and password rules (issue 8).

A module of its own so :mod:`archive_config.settings` can import it without a cycle; its fields
follow the same conventions (PascalCase keys, a check and a doc on every field, read by
:func:`archive_config.settings.parse_dataclass` and ``describe``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _meta(check: Callable[[Any], str | None] | None = None, doc: str = "") -> dict[str, Any]:
    return {"check": check, "doc": doc}


def _check_positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _check_threshold(value: int) -> str | None:
    return None if 1 <= value <= 100 else "must be from 1 to 100"


def _check_min_length(value: int) -> str | None:
    return None if 8 <= value <= 128 else "must be from 8 to 128"


@dataclass(frozen=True)
class SecuritySettings:
    """Who may do what: logins, sessions, bearer tokens, API keys, lockout, password rules."""

    enabled: bool = field(
        default=True,
        metadata=_meta(doc="Require a login, a token or an API key for everything but "
                           "/api/health and the API's documentation. Off: everyone may do "
                           "everything (a closed test network only)."))
    session_idle_minutes: float = field(
        default=30.0,
        metadata=_meta(_check_positive, "A browser session unused for this long ends."))
    session_hours: float = field(
        default=12.0,
        metadata=_meta(_check_positive, "A browser session ends this long after the login, "
                                        "used or not."))
    token_minutes: float = field(
        default=60.0,
        metadata=_meta(_check_positive, "Lifetime of a bearer token from POST /api/auth/token."))
    lockout_threshold: int = field(
        default=5,
        metadata=_meta(_check_threshold, "Failed logins within LockoutWindowMinutes that lock "
                                         "the account."))
    lockout_window_minutes: float = field(
        default=15.0,
        metadata=_meta(_check_positive, "The failures that lock an account must fall within "
                                        "this many minutes."))
    lockout_minutes: float = field(
        default=15.0,
        metadata=_meta(_check_positive, "How long a locked account stays locked (an "
                                        "administrator can unlock it sooner)."))
    password_min_length: int = field(
        default=10,
        metadata=_meta(_check_min_length, "Shortest password accepted; a password also needs "
                                          "3 of lower case, upper case, digits and other "
                                          "characters and must not contain the username."))
