"""Checking a username and password, with the lockout, and setting passwords under the rules.

The slow part (argon2) runs outside any transaction; the failure count is then updated in a
write transaction that re-reads it ``FOR UPDATE``, so concurrent failures all count. An unknown
user costs one hash too and gets the same answer as a wrong password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import write

from .lockout import LockoutPolicy, after_failure, after_success
from .passwords import Passwords, check_rules
from .users import User, Users

Failure = Literal["unknown", "wrong-password", "locked", "disabled"]


@dataclass(frozen=True)
class LoginResult:
    """``user`` on success; otherwise ``failure`` says why (for the audit trail only: clients
    see one generic answer, or the lock's end for a locked account). ``locked_now`` is True on
    the failure that locked the account."""

    user: User | None
    failure: Failure | None = None
    locked_until: datetime | None = None
    locked_now: bool = False
    failed_count: int = 0


class Accounts:
    def __init__(self, engine: Engine, users: Users, passwords: Passwords,
                 policy: LockoutPolicy, *, password_min_length: int,
                 clock: Clock = utc_now) -> None:
        self._engine = engine
        self.users = users
        self.passwords = passwords
        self.policy = policy
        self.password_min_length = password_min_length
        self._clock = clock

    def login(self, username: str, password: str) -> LoginResult:
        record = self.users.login_record(username)
        if record is None:
            self.passwords.burn(password)
            return LoginResult(None, "unknown")
        ok = self.passwords.verify(record.password_hash, password)
        now = self._clock()
        user = record.user
        with write(self._engine) as conn:
            state = self.users.lock_state_for_update(conn, user.id)
            if state.locked(now):
                return LoginResult(None, "locked", locked_until=state.locked_until,
                                   failed_count=state.failed_count)
            if not ok:
                new = after_failure(self.policy, state, now)
                self.users.set_lock_state(conn, user.id, new)
                locked_now = new.locked(now)
                return LoginResult(None, "locked" if locked_now else "wrong-password",
                                   locked_until=new.locked_until, locked_now=locked_now,
                                   failed_count=new.failed_count)
            if user.disabled:
                return LoginResult(None, "disabled")
            self.users.set_lock_state(conn, user.id, after_success(), logged_in=True)
        if self.passwords.needs_rehash(record.password_hash):
            self.users.rehash(user.id, self.passwords.hash(password))
        return LoginResult(self.users.get(user.id))

    def new_password_hash(self, username: str, password: str) -> str:
        """The hash of a new password, after the rules (:class:`PasswordRejected`)."""
        check_rules(password, username, self.password_min_length)
        return self.passwords.hash(password)

    def create_user(self, username: str, display_name: str, password: str, *,
                    must_change_password: bool = True) -> User:
        return self.users.create(username, display_name,
                                 self.new_password_hash(username, password),
                                 must_change_password=must_change_password)

    def set_password(self, user_id: int, password: str, *, must_change: bool,
                     keep_session: str | None = None) -> User:
        user = self.users.get(user_id)
        return self.users.set_password_hash(user_id, self.new_password_hash(user.username,
                                                                            password),
                                            must_change=must_change, keep_session=keep_session)
