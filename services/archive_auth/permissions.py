"""The fixed permissions, the built-in roles and the little set algebra on them.

``admin`` implies every other permission. Permissions are held per tenant; the key ``"*"`` (a
grant on the region unit, an API key for every tenant) means every tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

PERMISSIONS: Final = ("view", "download", "upload", "delete", "restore", "purge", "share",
                      "configure", "audit-read", "user-admin", "admin")
ADMIN: Final = "admin"
ALL_TENANTS: Final = "*"


class UnknownPermission(ValueError):
    """A permission name that is not one of :data:`PERMISSIONS`."""


@dataclass(frozen=True)
class BuiltinRole:
    id: str
    name: str
    name_en: str
    permissions: tuple[str, ...]


BUILTIN_ROLES: Final = (
    BuiltinRole("admin", "系统管理员", "System administrator", PERMISSIONS),
    BuiltinRole("tenant-admin", "医院管理员", "Hospital administrator",
                ("view", "download", "upload", "delete", "restore", "share", "configure",
                 "user-admin")),
    BuiltinRole("radiologist", "放射科医生", "Radiologist", ("view", "download", "upload", "share")),
    BuiltinRole("clinician", "临床医生", "Clinician", ("view",)),
    BuiltinRole("technician", "技师", "Technician", ("view", "upload")),
    BuiltinRole("auditor", "审计员", "Auditor", ("audit-read",)),
)
BUILTIN_ROLE_IDS: Final = frozenset(r.id for r in BUILTIN_ROLES)


def validate(permissions: Iterable[str]) -> frozenset[str]:
    """The permissions as a set; :class:`UnknownPermission` names the first unknown one."""
    found = frozenset(permissions)
    unknown = sorted(found - set(PERMISSIONS))
    if unknown:
        raise UnknownPermission(f"unknown permission {unknown[0]!r} "
                                f"(known: {', '.join(PERMISSIONS)})")
    return found


def expand(permissions: Iterable[str]) -> frozenset[str]:
    """What a set of permissions really allows: all of them when it holds ``admin``."""
    found = frozenset(permissions)
    return frozenset(PERMISSIONS) if ADMIN in found else found


def ordered(permissions: Iterable[str]) -> list[str]:
    """In the order of :data:`PERMISSIONS` (stable output for people and tests)."""
    found = set(permissions)
    return [p for p in PERMISSIONS if p in found]


PerTenant = Mapping[str, frozenset[str]]


def on_tenant(grants: PerTenant, tenant: str) -> frozenset[str]:
    """The expanded permissions held on ``tenant``: its own plus those on every tenant."""
    return expand(grants.get(tenant, frozenset()) | grants.get(ALL_TENANTS, frozenset()))


def merge(*parts: PerTenant) -> dict[str, frozenset[str]]:
    """The union, tenant by tenant."""
    merged: dict[str, frozenset[str]] = {}
    for part in parts:
        for tenant, perms in part.items():
            merged[tenant] = merged.get(tenant, frozenset()) | perms
    return merged
