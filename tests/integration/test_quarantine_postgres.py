"""The quarantine index's contract (tests/unit/test_state_quarantine.py) on PostgreSQL."""

from __future__ import annotations

import pytest

from testkit.postgres import PostgresCluster
from tests.integration.test_state_postgres import state_copy, state_template  # noqa: F401
from tests.unit.test_state_quarantine import QuarantineContract

pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]


class TestQuarantinePostgres(QuarantineContract):
    @pytest.fixture
    def state_url(self, postgres: PostgresCluster, state_template: str) -> str:  # noqa: F811
        return state_copy(postgres, state_template)
