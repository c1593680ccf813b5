"""Locking an account after repeated failed logins: the rule, apart from storage.

``threshold`` failures with the first no longer than ``window`` ago lock the account for
``duration``. A success resets the count; so does the window running out (the next failure
counts as the first). Failures while locked change nothing (the lock is not extended, so an
attacker cannot keep a user locked out for ever by trying once a minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from archive_config.security_settings import SecuritySettings


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 5
    window: timedelta = timedelta(minutes=15)
    duration: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: SecuritySettings) -> "LockoutPolicy":
        return cls(threshold=settings.lockout_threshold,
                   window=timedelta(minutes=settings.lockout_window_minutes),
                   duration=timedelta(minutes=settings.lockout_minutes))


@dataclass(frozen=True)
class LockState:
    """What a user row holds about failures."""

    failed_count: int = 0
    failed_since: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(policy: LockoutPolicy, state: LockState, now: datetime) -> LockState:
    """The state after one more failed login at ``now``."""
    if state.locked(now):
        return state
    fresh = state.failed_since is None or now - state.failed_since > policy.window or (
        state.locked_until is not None)  # a lock that ran out starts a new count
    count = 1 if fresh else state.failed_count + 1
    since = now if fresh or state.failed_since is None else state.failed_since
    if count >= policy.threshold:
        return LockState(failed_count=count, failed_since=since, locked_until=now + policy.duration)
    return LockState(failed_count=count, failed_since=since, locked_until=None)


def after_success() -> LockState:
    return LockState()
