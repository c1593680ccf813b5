"""The DICOM audit's tailer on a real PostgreSQL 15: the unit tests' bodies
(tests/unit/test_dicom_audit_log.py) again with a migrated PostgreSQL control database, so the
open requests and windows go through jsonb and the cursor row through ``SELECT … FOR UPDATE``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from archive_audit.chain import AuditLog
from archive_state.db import make_engine
from testkit.postgres import PostgresCluster
from tests.integration.test_state_postgres import new_database
from tests.unit._audit_env import KEY, ManualClock, clock  # noqa: F401
from tests.unit.test_dicom_audit_log import (  # noqa: F401
    log_path, tailer, test_a_request_cut_by_the_chunk_end_is_completed_by_the_next_run,
    test_a_tailer_that_lost_the_race_writes_nothing, test_flush_settles_and_closes_everything_now,
    test_rotation_reads_the_rest_of_the_old_file_first,
    test_search_finds_rows_by_calling_ae_action_study_patient,
    test_windows_become_rows_once_closed)

pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]


@pytest.fixture()
def engine(postgres: PostgresCluster) -> Iterator[Engine]:
    made = make_engine(new_database(postgres, "control"))
    yield made
    made.dispose()


@pytest.fixture()
def audit(engine: Engine, clock: ManualClock) -> AuditLog:  # noqa: F811
    return AuditLog(engine, KEY, clock)
