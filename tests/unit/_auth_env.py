"""A migrated control database (SQLite, copied from one template per session) with the auth
service over it, a manual clock and cheap argon2 costs, and a list-backed audit recorder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from archive_audit.events import AuditEvent
from archive_auth.org import OrgUnit
from archive_auth.passwords import HashCost
from archive_auth.service import AuthService
from archive_auth.users import Grant, User
from archive_config.security_settings import SecuritySettings
from archive_state.db import make_engine, migrate

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
#: argon2id with the smallest costs the library accepts: the tests check behaviour, not cost.
CHEAP = HashCost(time_cost=1, memory_cost_kib=8, parallelism=1)
PASSWORD = "Correct-Horse-9"


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class ListRecorder:
    events: list[AuditEvent] = field(default_factory=list)

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


def control_template(folder: Path) -> Path:
    path = folder / "control.sqlite"
    migrate(f"sqlite:///{path}", "control")
    return path


def control_engine(template: Path, folder: Path) -> Engine:
    path = folder / "control.sqlite"
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


@dataclass
class World:
    """Region → two hospitals (tenants ``a`` and ``b``) → a department under ``a``."""

    auth: AuthService
    clock: ManualClock
    region: OrgUnit
    hospital_a: OrgUnit
    hospital_b: OrgUnit
    department_a: OrgUnit

    def user(self, username: str, *grants: tuple[str, OrgUnit],
             must_change: bool = False) -> User:
        user = self.auth.accounts.create_user(username, username.title(), PASSWORD,
                                              must_change_password=must_change)
        if grants:
            self.auth.users.set_grants(user.id, [Grant(r, u.id) for r, u in grants], by="test")
        return user


def make_world(engine: Engine, settings: SecuritySettings | None = None) -> World:
    clock = ManualClock()
    auth = AuthService.build(engine, settings or SecuritySettings(), clock=clock,
                             hash_cost=CHEAP)
    region = auth.org.ensure_region()
    a = auth.org.create("hospital", "甲医院", name_en="Hospital A", parent_id=region.id,
                        tenant="a")
    b = auth.org.create("hospital", "乙医院", name_en="Hospital B", parent_id=region.id,
                        tenant="b")
    dept = auth.org.create("department", "放射科", parent_id=a.id)
    return World(auth, clock, region, a, b, dept)
