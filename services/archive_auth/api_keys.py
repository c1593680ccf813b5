"""API keys for systems (uploaders, RIS, integrators): ``ak_<keyid>_<secret>``.

The key id (16 hex digits) finds the row; the secret (256 random bits) is kept as its SHA-256,
compared in constant time. A key has its own permissions (validated, a subset of
:data:`~archive_auth.permissions.PERMISSIONS`), the tenants it is for (``None``: all), an
optional expiry and a revocation time. The whole key is shown once, when it is made.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.engine import Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import ApiKeyRow

from .credentials import API_KEY_PREFIX, digest, new_secret, same
from .errors import InvalidInput, NotFound
from .permissions import ALL_TENANTS, UnknownPermission, ordered, validate

_k = cast(Table, ApiKeyRow.__table__)
_KEY = re.compile(r"^ak_([0-9a-f]{16})_([A-Za-z0-9_-]{20,200})$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    permissions: tuple[str, ...]
    tenants: tuple[str, ...] | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    def grants(self) -> dict[str, frozenset[str]]:
        """Tenant → permissions, as a principal holds them."""
        perms = frozenset(self.permissions)
        if self.tenants is None:
            return {ALL_TENANTS: perms}
        return {t: perms for t in self.tenants}

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def parse(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.match(key)
    return None if match is None else (match.group(1), match.group(2))


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, permissions=tuple(ordered(row.permissions)),
                  tenants=None if row.tenants is None else tuple(row.tenants),
                  expires_at=row.expires_at, created_by=row.created_by,
                  created_at=row.created_at, revoked_at=row.revoked_at)


class ApiKeys:
    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, name: str, permissions: Iterable[str], *,
               tenants: Iterable[str] | None, created_by: str,
               expires_at: datetime | None = None) -> tuple[str, ApiKey]:
        """A new key: the whole key (shown once) and its record."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("API 密钥需要 1 到 200 个字符的名称",
                               "an API key needs a name of 1 to 200 characters",
                               code="invalid-name")
        try:
            perms = ordered(validate(permissions))
        except UnknownPermission as exc:
            raise InvalidInput("未知的权限", str(exc), code="unknown-permission") from None
        if not perms:
            raise InvalidInput("API 密钥至少需要一项权限", "an API key needs a permission",
                               code="no-permission")
        tenant_list = None if tenants is None else sorted(set(tenants))
        if tenant_list is not None and (not tenant_list or not all(
                _TENANT.match(t) for t in tenant_list)):
            raise InvalidInput("租户列表无效", "tenants must be tenant ids (or null for all)",
                               code="invalid-tenant")
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidInput("过期时间需要时区", "expires_at needs a time zone (…Z)",
                               code="invalid-expiry")
        if expires_at is not None and expires_at <= self._clock():
            raise InvalidInput("过期时间必须在将来", "expires_at must be in the future",
                               code="invalid-expiry")
        key_id = secrets.token_hex(8)
        secret = new_secret()
        now = self._clock()
        with write(self._engine) as conn:
            conn.execute(insert(_k).values(
                id=key_id, name=name, secret_hash=digest(secret), permissions=perms,
                tenants=tenant_list, expires_at=expires_at, created_by=created_by[:200],
                created_at=now, revoked_at=None))
            row = conn.execute(select(_k).where(_k.c.id == key_id)).one()
        return f"{API_KEY_PREFIX}{key_id}_{secret}", _key(row)

    def list(self) -> list[ApiKey]:
        with read(self._engine) as conn:
            return [_key(r) for r in conn.execute(select(_k).order_by(_k.c.created_at, _k.c.id))]

    def get(self, key_id: str) -> ApiKey:
        with read(self._engine) as conn:
            row = conn.execute(select(_k).where(_k.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"API 密钥 {key_id} 不存在", f"API key {key_id} does not exist")
        return _key(row)

    def lookup(self, key: str) -> ApiKey | None:
        """The usable key ``key`` is, or None (malformed, unknown, wrong secret, revoked,
        expired)."""
        parts = parse(key)
        if parts is None:
            return None
        key_id, secret = parts
        with read(self._engine) as conn:
            row = conn.execute(select(_k).where(_k.c.id == key_id)).first()
        if row is None or not same(row.secret_hash, digest(secret)):
            return None
        found = _key(row)
        return found if found.usable(self._clock()) else None

    def revoke(self, key_id: str) -> ApiKey:
        with write(self._engine) as conn:
            conn.execute(update(_k).where(_k.c.id == key_id, _k.c.revoked_at.is_(None))
                         .values(revoked_at=self._clock()))
        return self.get(key_id)
