"""Service heartbeats in the control database: which process of which tenant runs where, since
when, and what it last said about itself.

Every long-running process (Orthanc's plugin, the API, each worker, the launcher for nginx)
calls :meth:`ServiceRegistry.beat` every few seconds; ``/api/health`` reads :meth:`list` and
judges a service down when its last beat is too old. One row per (tenant, name, host): a restarted
process overwrites its predecessor's row, and ``started_at`` moves when the pid changes.
"""

from __future__ import annotations

import builtins
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, select
from sqlalchemy.engine import Engine

from ._sql import upsert_insert
from .clock import Clock, utc_now
from .db import read, write
from .models import ServiceRow

_services = cast(Table, ServiceRow.__table__)


@dataclass(frozen=True)
class ServiceBeat:
    """The last heartbeat of one process."""

    tenant: str
    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    beat_at: datetime
    detail: dict[str, Any]


class ServiceRegistry:
    """Heartbeats of the region's processes (control database)."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now, host: str | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.host = host or socket.gethostname()

    def beat(self, name: str, tenant: str, pid: int, version: str, detail: dict[str, Any]) -> None:
        """Record that process ``pid`` (service ``name`` of ``tenant``) is alive now."""
        now = self._clock()
        with write(self._engine) as conn:
            insert = upsert_insert(conn, _services).values(
                tenant=tenant,
                name=name,
                host=self.host,
                pid=pid,
                version=version,
                started_at=now,
                beat_at=now,
                detail=detail,
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["tenant", "name", "host"],
                    set_={
                        "pid": insert.excluded.pid,
                        "version": insert.excluded.version,
                        "beat_at": insert.excluded.beat_at,
                        "detail": insert.excluded.detail,
                        "started_at": case(
                            (_services.c.pid == insert.excluded.pid, _services.c.started_at),
                            else_=insert.excluded.started_at,
                        ),
                    },
                )
            )

    def list(self, tenant: str | None = None) -> builtins.list[ServiceBeat]:
        """Every service's last beat (of ``tenant``, or of all tenants), by tenant and name."""
        query = select(_services).order_by(_services.c.tenant, _services.c.name, _services.c.host)
        if tenant is not None:
            query = query.where(_services.c.tenant == tenant)
        with read(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            ServiceBeat(
                tenant=r.tenant,
                name=r.name,
                host=r.host,
                pid=r.pid,
                version=r.version,
                started_at=r.started_at,
                beat_at=r.beat_at,
                detail=r.detail,
            )
            for r in rows
        ]
