"""Roles: the built-in ones (seeded by the migration, fixed) and custom ones."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import GrantRow, RoleRow

from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .permissions import UnknownPermission, ordered, validate

_r = cast(Table, RoleRow.__table__)
_g = cast(Table, GrantRow.__table__)
_ROLE_ID = re.compile(r"^[a-z][a-z0-9-]{1,63}$")


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    name_en: str
    permissions: tuple[str, ...]
    builtin: bool


def _role(row: Row[Any]) -> Role:
    return Role(id=row.id, name=row.name, name_en=row.name_en,
                permissions=tuple(ordered(row.permissions)), builtin=bool(row.builtin))


def _permissions(values: Iterable[str]) -> list[str]:
    try:
        return ordered(validate(values))
    except UnknownPermission as exc:
        raise InvalidInput("未知的权限", str(exc), code="unknown-permission") from None


class Roles:
    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def list(self) -> list[Role]:
        with read(self._engine) as conn:
            return [_role(r) for r in conn.execute(
                select(_r).order_by(_r.c.builtin.desc(), _r.c.id))]

    def get(self, role_id: str) -> Role:
        with read(self._engine) as conn:
            return self._get(conn, role_id)

    @staticmethod
    def _get(conn: Connection, role_id: str) -> Role:
        row = conn.execute(select(_r).where(_r.c.id == role_id)).first()
        if row is None:
            raise NotFound(f"角色 {role_id} 不存在", f"role {role_id} does not exist")
        return _role(row)

    def create(self, role_id: str, name: str, name_en: str, permissions: Iterable[str]) -> Role:
        if not _ROLE_ID.match(role_id):
            raise InvalidInput("角色标识只能包含 a-z、0-9 和 '-'",
                               "a role id is 2-64 characters of a-z, 0-9 and '-', "
                               "starting with a letter", code="invalid-role-id")
        if not name.strip() or not name_en.strip():
            raise InvalidInput("角色需要中文和英文名称", "a role needs a Chinese and an English name",
                               code="invalid-name")
        perms = _permissions(permissions)
        now = self._clock()
        with write(self._engine) as conn:
            if conn.execute(select(func.count()).select_from(_r)
                            .where(_r.c.id == role_id)).scalar_one():
                raise Conflict(f"角色 {role_id} 已存在", f"role {role_id} exists already")
            conn.execute(insert(_r).values(id=role_id, name=name.strip()[:200],
                                           name_en=name_en.strip()[:200], permissions=perms,
                                           builtin=False, created_at=now, updated_at=now))
            return self._get(conn, role_id)

    def update(self, role_id: str, *, name: str | None = None, name_en: str | None = None,
               permissions: Iterable[str] | None = None) -> Role:
        """Rename any role; change the permissions of custom roles only."""
        values: dict[str, Any] = {}
        if name is not None and name.strip():
            values["name"] = name.strip()[:200]
        if name_en is not None and name_en.strip():
            values["name_en"] = name_en.strip()[:200]
        with write(self._engine) as conn:
            current = self._get(conn, role_id)
            if permissions is not None:
                perms = _permissions(permissions)
                if current.builtin and tuple(perms) != current.permissions:
                    raise Forbidden("内置角色的权限不能修改",
                                    "the permissions of a built-in role cannot be changed",
                                    code="builtin-role")
                values["permissions"] = perms
            if values:
                conn.execute(update(_r).where(_r.c.id == role_id)
                             .values(updated_at=self._clock(), **values))
            return self._get(conn, role_id)

    def delete(self, role_id: str) -> None:
        with write(self._engine) as conn:
            if self._get(conn, role_id).builtin:
                raise Forbidden("内置角色不能删除", "a built-in role cannot be deleted",
                                code="builtin-role")
            if conn.execute(select(func.count()).select_from(_g)
                            .where(_g.c.role_id == role_id)).scalar_one():
                raise Conflict("仍有用户拥有该角色", "users still hold this role")
            conn.execute(delete(_r).where(_r.c.id == role_id))
