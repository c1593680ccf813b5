"""Browser sessions: an opaque cookie token, stored as its SHA-256, with an idle timeout and an
absolute lifetime, a CSRF token and a short public id.

A lookup refreshes ``last_seen_at`` only when it is older than :data:`TOUCH_SECONDS`, so a busy
viewer does not write the control database on every request; the idle timeout is therefore
exact to within that many seconds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Engine

from archive_config.security_settings import SecuritySettings
from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import SessionRow

from .credentials import digest, new_public_id, new_token

_s = cast(Table, SessionRow.__table__)
TOUCH_SECONDS = 30.0


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)

    @classmethod
    def of(cls, settings: SecuritySettings) -> "SessionPolicy":
        return cls(idle=timedelta(minutes=settings.session_idle_minutes),
                   lifetime=timedelta(hours=settings.session_hours))


@dataclass(frozen=True)
class Session:
    public_id: str
    user_id: int
    csrf_token: str = field(repr=False)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    def ends_at(self, policy: SessionPolicy) -> datetime:
        """When it ends if not used again."""
        return min(self.expires_at, self.last_seen_at + policy.idle)


class Sessions:
    def __init__(self, engine: Engine, policy: SessionPolicy, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self.policy = policy
        self._clock = clock

    def create(self, user_id: int, *, source_ip: str | None = None) -> tuple[str, Session]:
        """A new session: the cookie's token (shown once) and the session."""
        token = new_token()
        now = self._clock()
        session = Session(public_id=new_public_id(), user_id=user_id,
                          csrf_token=secrets.token_urlsafe(32), created_at=now,
                          last_seen_at=now, expires_at=now + self.policy.lifetime)
        with write(self._engine) as conn:
            conn.execute(insert(_s).values(
                id=session.public_id, token_hash=digest(token), user_id=user_id,
                csrf_token=session.csrf_token, created_at=now, last_seen_at=now,
                expires_at=session.expires_at, revoked_at=None,
                source_ip=(source_ip or None) and source_ip[:64]))
        return token, session

    def lookup(self, token: str) -> Session | None:
        """The live session of a cookie token, or None (unknown, revoked, idle, expired)."""
        now = self._clock()
        with read(self._engine) as conn:
            row = conn.execute(select(_s).where(_s.c.token_hash == digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        if now >= row.expires_at or now >= row.last_seen_at + self.policy.idle:
            return None
        last_seen = row.last_seen_at
        if (now - last_seen).total_seconds() >= TOUCH_SECONDS:
            with write(self._engine) as conn:
                conn.execute(update(_s).where(_s.c.id == row.id, _s.c.revoked_at.is_(None))
                             .values(last_seen_at=now))
            last_seen = now
        return Session(public_id=row.id, user_id=row.user_id, csrf_token=row.csrf_token,
                       created_at=row.created_at, last_seen_at=last_seen,
                       expires_at=row.expires_at)

    def revoke(self, public_id: str) -> bool:
        """End a session; False when it had ended already."""
        with write(self._engine) as conn:
            result = conn.execute(update(_s).where(_s.c.id == public_id,
                                                   _s.c.revoked_at.is_(None))
                                  .values(revoked_at=self._clock()))
        return bool(result.rowcount)
