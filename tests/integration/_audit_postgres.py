"""Fixtures of the tests that run the audit's unit-test bodies again on PostgreSQL: a migrated,
empty control database of the session's cluster, and an audit trail over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from archive_audit.chain import AuditLog
from archive_state.db import make_engine
from testkit.postgres import PostgresCluster
from tests.integration.test_state_postgres import new_database
from tests.unit._audit_env import KEY, ManualClock


@pytest.fixture()
def engine(postgres: PostgresCluster) -> Iterator[Engine]:
    made = make_engine(new_database(postgres, "control"))
    yield made
    made.dispose()


@pytest.fixture()
def audit(engine: Engine, clock: ManualClock) -> AuditLog:
    return AuditLog(engine, KEY, clock)
