"""Column types that behave the same on SQLite and PostgreSQL.

The migrations import these too, so a table is created with exactly the types the models read.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp in and out.

    PostgreSQL stores ``timestamptz``. SQLite has no time zone type, so the value is stored as
    naive UTC text in SQLAlchemy's fixed-width ISO format, which compares correctly as text (the
    claim query compares ``run_after <= now``). Naive datetimes are refused on the way in: a
    naive local time would silently shift every lease by the machine's UTC offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state database stores UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def json_type() -> TypeEngine[Any]:
    """JSON text on SQLite, ``jsonb`` on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


def id_type() -> TypeEngine[int]:
    """A 64-bit id on PostgreSQL; on SQLite the ``INTEGER PRIMARY KEY`` that aliases the rowid
    (only that spelling gets SQLite's automatic ids)."""
    return BigInteger().with_variant(Integer(), "sqlite")
