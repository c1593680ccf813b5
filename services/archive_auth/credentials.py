"""Random secrets and their stored form.

Session cookies, bearer tokens and API key secrets are 256-bit random values, so a plain SHA-256
is enough to store them (no key-stretching: guessing is hopeless, and a request must not cost a
password hash). Comparisons use :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

#: Bearer tokens never start like an API key, so a credential's form tells which table to ask.
API_KEY_PREFIX = "ak_"


def new_secret() -> str:
    """256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def new_token() -> str:
    """A session or bearer token: :func:`new_secret` that cannot be mistaken for an API key."""
    while True:
        token = new_secret()
        if not token.startswith(API_KEY_PREFIX):
            return token


def new_public_id() -> str:
    """A short id shown in logs and the audit trail (never usable as a credential)."""
    return secrets.token_hex(8)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
