"""The DICOM audit's tailer on a real PostgreSQL 15: the unit tests' bodies
(tests/unit/test_dicom_audit_log.py) again with a migrated PostgreSQL control database, so the
open requests and windows go through jsonb and the cursor row through ``SELECT … FOR UPDATE``."""

from __future__ import annotations

import pytest

from tests.integration._audit_postgres import audit, engine  # noqa: F401
from tests.unit._audit_env import clock  # noqa: F401
from tests.unit.test_dicom_audit_log import (  # noqa: F401
    log_path, tailer, test_a_request_cut_by_the_chunk_end_is_completed_by_the_next_run,
    test_a_tailer_that_lost_the_race_writes_nothing, test_flush_settles_and_closes_everything_now,
    test_rotation_reads_the_rest_of_the_old_file_first,
    test_search_finds_rows_by_calling_ae_action_study_patient,
    test_windows_become_rows_once_closed)

pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]


