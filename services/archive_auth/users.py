"""Users, their grants (role on an org unit) and what those grants resolve to, per tenant.

Usernames are unique without regard to case (``username_key`` is the case-folded form); letters
of any script (Chinese names too), digits and ``. _ @ -`` are allowed, nothing that would break
HTTP Basic (``:``) or a log line. The password hash never leaves this module except through
:meth:`Users.login_record`, which :mod:`archive_auth.accounts` uses to check a login.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import (
    AccessTokenRow,
    GrantRow,
    OrgUnitRow,
    RoleRow,
    SessionRow,
    UserRow,
)

from .errors import Conflict, InvalidInput, NotFound
from .lockout import LockState
from .org import load_scopes
from .passwords import Passwords

_users = cast(Table, UserRow.__table__)
_grants = cast(Table, GrantRow.__table__)
_roles = cast(Table, RoleRow.__table__)
_units = cast(Table, OrgUnitRow.__table__)
_sessions = cast(Table, SessionRow.__table__)
_tokens = cast(Table, AccessTokenRow.__table__)
_USERNAME = re.compile(r"^[\w.@-]{1,150}$")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    disabled: bool
    must_change_password: bool
    failed_count: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Grant:
    role_id: str
    unit_id: int


@dataclass(frozen=True)
class LoginRecord:
    """What checking a login needs to know about a user."""

    user: User
    password_hash: str
    lock: LockState


def username_key(username: str) -> str:
    return username.casefold()


def check_username(username: str) -> str:
    if not _USERNAME.match(username) or username.strip() != username:
        raise InvalidInput("用户名为 1 到 150 个字母、数字或 . _ @ -",
                           "a username is 1 to 150 letters, digits or . _ @ -",
                           code="invalid-username")
    return username


def _user(row: Row[Any]) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name,
                disabled=bool(row.disabled), must_change_password=bool(row.must_change_password),
                failed_count=row.failed_count, locked_until=row.locked_until,
                created_at=row.created_at, last_login_at=row.last_login_at)


def _not_found(user_id: int | str) -> NotFound:
    return NotFound(f"用户 {user_id} 不存在", f"user {user_id} does not exist")


def resolve_permissions(conn: Connection, user_id: int) -> dict[str, frozenset[str]]:
    """Tenant (or ``"*"``) → the permissions the user's grants give there (not expanded)."""
    rows = conn.execute(select(_grants.c.unit_id, _roles.c.permissions)
                        .join(_roles, _roles.c.id == _grants.c.role_id)
                        .where(_grants.c.user_id == user_id)).all()
    if not rows:
        return {}
    scope = load_scopes(conn)
    found: dict[str, frozenset[str]] = {}
    for row in rows:
        tenant = scope.get(int(row.unit_id))
        if tenant is not None:
            found[tenant] = found.get(tenant, frozenset()) | frozenset(row.permissions)
    return found


class Users:
    def __init__(self, engine: Engine, passwords: Passwords, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._passwords = passwords
        self._clock = clock

    # -- reading ------------------------------------------------------------------------------

    def list(self, *, user_ids: Iterable[int] | None = None) -> list[User]:
        query = select(_users).order_by(_users.c.username_key)
        if user_ids is not None:
            query = query.where(_users.c.id.in_(list(user_ids)))
        with read(self._engine) as conn:
            return [_user(r) for r in conn.execute(query)]

    def get(self, user_id: int) -> User:
        with read(self._engine) as conn:
            return self._get(conn, user_id)

    @staticmethod
    def _get(conn: Connection, user_id: int) -> User:
        row = conn.execute(select(_users).where(_users.c.id == user_id)).first()
        if row is None:
            raise _not_found(user_id)
        return _user(row)

    def find(self, username: str) -> User | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_users).where(
                _users.c.username_key == username_key(username))).first()
            return None if row is None else _user(row)

    def login_record(self, username: str) -> LoginRecord | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_users).where(
                _users.c.username_key == username_key(username))).first()
        return None if row is None else self._record(row)

    def login_record_of(self, user_id: int) -> LoginRecord:
        with read(self._engine) as conn:
            row = conn.execute(select(_users).where(_users.c.id == user_id)).first()
        if row is None:
            raise _not_found(user_id)
        return self._record(row)

    @staticmethod
    def _record(row: Row[Any]) -> LoginRecord:
        return LoginRecord(_user(row), row.password_hash, LockState(
            failed_count=row.failed_count, failed_since=row.failed_since,
            locked_until=row.locked_until))

    def permissions(self, user_id: int) -> dict[str, frozenset[str]]:
        with read(self._engine) as conn:
            return resolve_permissions(conn, user_id)

    def grants(self, user_id: int) -> builtins.list[Grant]:
        with read(self._engine) as conn:
            self._get(conn, user_id)
            return [Grant(r.role_id, r.unit_id) for r in conn.execute(
                select(_grants.c.role_id, _grants.c.unit_id).where(_grants.c.user_id == user_id)
                .order_by(_grants.c.unit_id, _grants.c.role_id))]

    def users_with_grants_on(self, unit_ids: Iterable[int]) -> set[int]:
        with read(self._engine) as conn:
            return set(conn.execute(select(_grants.c.user_id).distinct().where(
                _grants.c.unit_id.in_(list(unit_ids)))).scalars())

    def users_without_grants(self) -> set[int]:
        with read(self._engine) as conn:
            return set(conn.execute(select(_users.c.id).where(
                ~_users.c.id.in_(select(_grants.c.user_id)))).scalars())

    # -- changing -----------------------------------------------------------------------------

    def create(self, username: str, display_name: str, password_hash: str, *,
               must_change_password: bool = True) -> User:
        """A new user; ``password_hash`` from :meth:`Passwords.hash` after the rules were
        checked (:mod:`archive_auth.accounts`)."""
        check_username(username)
        display = display_name.strip() or username
        now = self._clock()
        try:
            with write(self._engine) as conn:
                user_id: int = conn.execute(insert(_users).values(
                    username=username, username_key=username_key(username),
                    display_name=display[:200], password_hash=password_hash, disabled=False,
                    must_change_password=must_change_password, failed_count=0,
                    failed_since=None, locked_until=None, created_at=now, updated_at=now,
                    password_changed_at=now, last_login_at=None).returning(_users.c.id)
                ).scalar_one()
                return self._get(conn, int(user_id))
        except IntegrityError:
            raise Conflict(f"用户名 {username} 已被使用", f"the username {username} is taken",
                           code="username-taken") from None

    def update(self, user_id: int, *, display_name: str | None = None,
               disabled: bool | None = None, must_change_password: bool | None = None) -> User:
        values: dict[str, Any] = {}
        if display_name is not None and display_name.strip():
            values["display_name"] = display_name.strip()[:200]
        if disabled is not None:
            values["disabled"] = disabled
        if must_change_password is not None:
            values["must_change_password"] = must_change_password
        with write(self._engine) as conn:
            self._get(conn, user_id)
            if values:
                conn.execute(update(_users).where(_users.c.id == user_id)
                             .values(updated_at=self._clock(), **values))
            if disabled:
                self._revoke_all(conn, user_id, keep_session=None)
            return self._get(conn, user_id)

    def set_password_hash(self, user_id: int, password_hash: str, *, must_change: bool,
                          keep_session: str | None = None) -> User:
        """Store a new hash and end every session and token of the user except
        ``keep_session`` (the one that changed its own password)."""
        now = self._clock()
        with write(self._engine) as conn:
            self._get(conn, user_id)
            conn.execute(update(_users).where(_users.c.id == user_id).values(
                password_hash=password_hash, must_change_password=must_change,
                password_changed_at=now, updated_at=now, failed_count=0, failed_since=None,
                locked_until=None))
            self._revoke_all(conn, user_id, keep_session=keep_session)
            return self._get(conn, user_id)

    def rehash(self, user_id: int, password_hash: str) -> None:
        """Store the same password under new hash costs (sessions stay)."""
        with write(self._engine) as conn:
            conn.execute(update(_users).where(_users.c.id == user_id)
                         .values(password_hash=password_hash))

    def _revoke_all(self, conn: Connection, user_id: int, *, keep_session: str | None) -> None:
        now = self._clock()
        sessions = update(_sessions).where(_sessions.c.user_id == user_id,
                                           _sessions.c.revoked_at.is_(None))
        if keep_session is not None:
            sessions = sessions.where(_sessions.c.id != keep_session)
        conn.execute(sessions.values(revoked_at=now))
        conn.execute(update(_tokens).where(_tokens.c.user_id == user_id,
                                           _tokens.c.revoked_at.is_(None)).values(revoked_at=now))

    def revoke_credentials(self, user_id: int) -> None:
        with write(self._engine) as conn:
            self._revoke_all(conn, user_id, keep_session=None)

    def delete(self, user_id: int) -> None:
        """Delete the user, its grants, sessions and tokens (the audit trail keeps its name)."""
        with write(self._engine) as conn:
            self._get(conn, user_id)
            for table in (_grants, _sessions, _tokens):
                conn.execute(delete(table).where(table.c.user_id == user_id))
            conn.execute(delete(_users).where(_users.c.id == user_id))

    def set_lock_state(self, conn: Connection, user_id: int, state: LockState, *,
                       logged_in: bool = False) -> None:
        values: dict[str, Any] = {"failed_count": state.failed_count,
                                  "failed_since": state.failed_since,
                                  "locked_until": state.locked_until}
        if logged_in:
            values["last_login_at"] = self._clock()
        conn.execute(update(_users).where(_users.c.id == user_id).values(**values))

    def lock_state_for_update(self, conn: Connection, user_id: int) -> LockState:
        """The failure counters, locked for this transaction (``FOR UPDATE`` on PostgreSQL;
        SQLite's ``BEGIN IMMEDIATE`` already serialises writers)."""
        row = conn.execute(select(_users.c.failed_count, _users.c.failed_since,
                                  _users.c.locked_until)
                           .where(_users.c.id == user_id).with_for_update()).first()
        if row is None:
            raise _not_found(user_id)
        return LockState(row.failed_count, row.failed_since, row.locked_until)

    def unlock(self, user_id: int) -> User:
        with write(self._engine) as conn:
            self._get(conn, user_id)
            self.set_lock_state(conn, user_id, LockState())
            return self._get(conn, user_id)

    def set_grants(self, user_id: int, grants: Sequence[Grant], *, by: str | None) -> builtins.list[Grant]:
        """Replace the user's grants with ``grants``."""
        wanted = sorted(set(grants), key=lambda g: (g.unit_id, g.role_id))
        now = self._clock()
        with write(self._engine) as conn:
            self._get(conn, user_id)
            roles: set[str] = set(conn.execute(select(_roles.c.id)).scalars())
            units: set[int] = set(conn.execute(select(_units.c.id)).scalars())
            for grant in wanted:
                if grant.role_id not in roles:
                    raise InvalidInput(f"角色 {grant.role_id} 不存在",
                                       f"role {grant.role_id} does not exist", code="unknown-role")
                if grant.unit_id not in units:
                    raise InvalidInput(f"机构 {grant.unit_id} 不存在",
                                       f"org unit {grant.unit_id} does not exist",
                                       code="unknown-unit")
            conn.execute(delete(_grants).where(_grants.c.user_id == user_id))
            if wanted:
                conn.execute(insert(_grants), [
                    {"user_id": user_id, "role_id": g.role_id, "unit_id": g.unit_id,
                     "created_at": now, "created_by": by} for g in wanted])
        return wanted

    def count_admins(self) -> int:
        """Users (not disabled) holding ``admin`` on the region unit."""
        with read(self._engine) as conn:
            region = select(_units.c.id).where(_units.c.kind == "region")
            admin_roles = [r.id for r in conn.execute(select(_roles.c.id, _roles.c.permissions))
                           if "admin" in r.permissions]
            return int(conn.execute(
                select(func.count(func.distinct(_grants.c.user_id)))
                .join(_users, _users.c.id == _grants.c.user_id)
                .where(_grants.c.unit_id.in_(region), _grants.c.role_id.in_(admin_roles),
                       _users.c.disabled.is_(False))).scalar_one())
