"""Bearer tokens (``POST /api/auth/token``): opaque, stored as their SHA-256, with a fixed
lifetime. Ending the user's sessions (password change, disabling) ends them too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Engine

from archive_state.clock import Clock, utc_now
from archive_state.db import read, write
from archive_state.models_security import AccessTokenRow

from .credentials import digest, new_public_id, new_token

_t = cast(Table, AccessTokenRow.__table__)


@dataclass(frozen=True)
class AccessToken:
    public_id: str
    user_id: int
    created_at: datetime
    expires_at: datetime


class AccessTokens:
    def __init__(self, engine: Engine, lifetime: timedelta, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self.lifetime = lifetime
        self._clock = clock

    def issue(self, user_id: int) -> tuple[str, AccessToken]:
        token = new_token()
        now = self._clock()
        issued = AccessToken(new_public_id(), user_id, now, now + self.lifetime)
        with write(self._engine) as conn:
            conn.execute(insert(_t).values(id=issued.public_id, token_hash=digest(token),
                                           user_id=user_id, created_at=now,
                                           expires_at=issued.expires_at, revoked_at=None))
        return token, issued

    def lookup(self, token: str) -> AccessToken | None:
        with read(self._engine) as conn:
            row = conn.execute(select(_t).where(_t.c.token_hash == digest(token))).first()
        if row is None or row.revoked_at is not None or self._clock() >= row.expires_at:
            return None
        return AccessToken(row.id, row.user_id, row.created_at, row.expires_at)

    def revoke(self, public_id: str) -> bool:
        with write(self._engine) as conn:
            result = conn.execute(update(_t).where(_t.c.id == public_id,
                                                   _t.c.revoked_at.is_(None))
                                  .values(revoked_at=self._clock()))
        return bool(result.rowcount)
