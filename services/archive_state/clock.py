"""Time as this package sees it: aware UTC datetimes from an injectable clock.

Leases and back-off compare times taken from the clock of the process that writes them, so the
machines sharing a PostgreSQL database must keep their clocks in step (NTP); tests pass a manual
clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
