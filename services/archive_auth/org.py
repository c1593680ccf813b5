"""The organisation tree: region → hospitals → campuses, clinics, departments.

A unit's tenant (the archive that holds its images) is its own ``tenant`` or its nearest
ancestor's. A grant on the region unit counts on every tenant (``"*"``); a unit with no tenant
on its way to the region gives nothing (a department not yet placed under a hospital).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import ORG_UNIT_KINDS, GrantRow, OrgUnitRow

from .errors import Conflict, InvalidInput, NotFound
from .permissions import ALL_TENANTS

_u = cast(Table, OrgUnitRow.__table__)
_g = cast(Table, GrantRow.__table__)
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_UNSET: Any = object()


@dataclass(frozen=True)
class OrgUnit:
    id: int
    kind: str
    name: str
    name_en: str | None
    parent_id: int | None
    tenant: str | None
    #: the tenant grants on this unit apply to: own, inherited, ``"*"`` (region) or None
    scope: str | None
    created_at: datetime


def scopes(rows: Iterable[Mapping[str, Any]]) -> dict[int, str | None]:
    """Unit id → the tenant a grant on it applies to (module docstring)."""
    units = {int(r["id"]): r for r in rows}
    found: dict[int, str | None] = {}

    def walk(unit_id: int, seen: frozenset[int]) -> str | None:
        if unit_id in found:
            return found[unit_id]
        row = units.get(unit_id)
        if row is None or unit_id in seen:
            return None
        if row["kind"] == "region":
            value: str | None = ALL_TENANTS
        elif row["tenant"]:
            value = str(row["tenant"])
        elif row["parent_id"] is None:
            value = None
        else:
            parent = walk(int(row["parent_id"]), seen | {unit_id})
            value = None if parent == ALL_TENANTS else parent
        found[unit_id] = value
        return value

    for unit_id in units:
        walk(unit_id, frozenset())
    return found


def load_scopes(conn: Connection) -> dict[int, str | None]:
    return scopes(dict(r._mapping) for r in conn.execute(
        select(_u.c.id, _u.c.kind, _u.c.tenant, _u.c.parent_id)))


def _check_text(name: str, value: str, *, max_length: int = 200) -> str:
    value = value.strip()
    if not value or len(value) > max_length:
        raise InvalidInput(f"{name} 不能为空且不超过 {max_length} 个字符",
                           f"{name} must be 1 to {max_length} characters", code="invalid-name")
    return value


def _check_tenant(tenant: str | None) -> str | None:
    if tenant is None or tenant == "":
        return None
    if not _TENANT_RE.match(tenant):
        raise InvalidInput("租户标识只能包含 a-z、0-9 和 '-'，最长 32 个字符",
                           "a tenant id is 1-32 characters of a-z, 0-9 and '-'",
                           code="invalid-tenant")
    return tenant


class OrgUnits:
    """The org units of the control database."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def _units(self, conn: Connection, rows: Iterable[Row[Any]]) -> builtins.list[OrgUnit]:
        scope = load_scopes(conn)
        return [OrgUnit(id=r.id, kind=r.kind, name=r.name, name_en=r.name_en,
                        parent_id=r.parent_id, tenant=r.tenant, scope=scope.get(r.id),
                        created_at=r.created_at) for r in rows]

    def list(self) -> builtins.list[OrgUnit]:
        with read(self._engine) as conn:
            return self._units(conn, conn.execute(select(_u).order_by(_u.c.id)).all())

    def get(self, unit_id: int) -> OrgUnit:
        with read(self._engine) as conn:
            return self._get(conn, unit_id)

    def _get(self, conn: Connection, unit_id: int) -> OrgUnit:
        row = conn.execute(select(_u).where(_u.c.id == unit_id)).first()
        if row is None:
            raise NotFound(f"机构 {unit_id} 不存在", f"org unit {unit_id} does not exist")
        return self._units(conn, [row])[0]

    def region(self) -> OrgUnit | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_u).where(_u.c.kind == "region")).first()
            return None if row is None else self._units(conn, [row])[0]

    def ensure_region(self, name: str = "区域影像中心", name_en: str = "Region") -> OrgUnit:
        """The region unit, made when missing (first run)."""
        existing = self.region()
        return existing if existing is not None else self.create("region", name, name_en=name_en)

    def create(self, kind: str, name: str, *, name_en: str | None = None,
               parent_id: int | None = None, tenant: str | None = None) -> OrgUnit:
        if kind not in ORG_UNIT_KINDS:
            raise InvalidInput(f"未知的机构类型 {kind!r}",
                               f"unknown org unit kind {kind!r} ({', '.join(ORG_UNIT_KINDS)})",
                               code="invalid-kind")
        name = _check_text("name", name)
        tenant = _check_tenant(tenant)
        with write(self._engine) as conn:
            if kind == "region":
                if parent_id is not None or tenant is not None:
                    raise InvalidInput("区域没有上级机构和租户",
                                       "the region has no parent and no tenant",
                                       code="invalid-region")
                if conn.execute(select(func.count()).select_from(_u)
                                .where(_u.c.kind == "region")).scalar_one():
                    raise Conflict("区域已存在", "the region unit exists already")
            else:
                if parent_id is None:
                    raise InvalidInput("需要上级机构", "parent_id is required",
                                       code="parent-required")
                self._get(conn, parent_id)
                if kind == "hospital" and tenant is None:
                    raise InvalidInput("医院需要租户标识", "a hospital needs its tenant",
                                       code="tenant-required")
            unit_id: int = conn.execute(insert(_u).values(
                kind=kind, name=name, name_en=(name_en or "").strip() or None,
                parent_id=parent_id, tenant=tenant, created_at=self._clock())
                .returning(_u.c.id)).scalar_one()
            return self._get(conn, int(unit_id))

    def update(self, unit_id: int, *, name: str | None = None, name_en: Any = _UNSET,
               parent_id: Any = _UNSET, tenant: Any = _UNSET) -> OrgUnit:
        """Change what is given (``None`` clears ``name_en`` or ``tenant``)."""
        values: dict[str, Any] = {}
        with write(self._engine) as conn:
            current = self._get(conn, unit_id)
            if name is not None:
                values["name"] = _check_text("name", name)
            if name_en is not _UNSET:
                values["name_en"] = (name_en or "").strip() or None
            if tenant is not _UNSET:
                values["tenant"] = _check_tenant(tenant)
                if current.kind == "region" and values["tenant"] is not None:
                    raise InvalidInput("区域没有租户", "the region has no tenant",
                                       code="invalid-region")
                if current.kind == "hospital" and values["tenant"] is None:
                    raise InvalidInput("医院需要租户标识", "a hospital needs its tenant",
                                       code="tenant-required")
            if parent_id is not _UNSET:
                if current.kind == "region" or parent_id is None:
                    raise InvalidInput("只有区域没有上级机构", "only the region has no parent",
                                       code="parent-required")
                self._check_no_cycle(conn, unit_id, int(parent_id))
                values["parent_id"] = int(parent_id)
            if values:
                conn.execute(update(_u).where(_u.c.id == unit_id).values(**values))
            return self._get(conn, unit_id)

    def _check_no_cycle(self, conn: Connection, unit_id: int, parent_id: int) -> None:
        parents: dict[int, int | None] = {
            int(r.id): r.parent_id for r in conn.execute(select(_u.c.id, _u.c.parent_id))}
        if parent_id not in parents:
            raise NotFound(f"机构 {parent_id} 不存在", f"org unit {parent_id} does not exist")
        step: int | None = parent_id
        while step is not None:
            if step == unit_id:
                raise Conflict("机构不能成为自己的下级", "a unit cannot be placed under itself")
            step = parents.get(step)

    def delete(self, unit_id: int) -> None:
        """Delete a leaf unit that nobody holds a grant on."""
        with write(self._engine) as conn:
            self._get(conn, unit_id)
            if conn.execute(select(func.count()).select_from(_u)
                            .where(_u.c.parent_id == unit_id)).scalar_one():
                raise Conflict("机构下还有下级机构", "the unit still has units under it")
            if conn.execute(select(func.count()).select_from(_g)
                            .where(_g.c.unit_id == unit_id)).scalar_one():
                raise Conflict("仍有用户在该机构拥有角色", "users still hold roles on the unit")
            conn.execute(delete(_u).where(_u.c.id == unit_id))
