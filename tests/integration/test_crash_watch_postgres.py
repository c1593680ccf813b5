"""The crash guard's store and scans (tests/unit/test_crash_guard.py) on PostgreSQL."""

from __future__ import annotations

import pytest

from testkit.postgres import PostgresCluster
from tests.integration.test_state_postgres import state_copy, state_template  # noqa: F401
from tests.unit.test_crash_guard import CrashWatchContract

pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]


class TestCrashWatchPostgres(CrashWatchContract):
    @pytest.fixture
    def state_url(self, postgres: PostgresCluster, state_template: str) -> str:  # noqa: F811
        return state_copy(postgres, state_template)
