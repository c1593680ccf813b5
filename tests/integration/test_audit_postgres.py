"""The audit chain, its search and the door-log tailer on a real PostgreSQL 15: the unit tests'
bodies (tests/unit/test_audit_*.py) run again with a migrated PostgreSQL control database, so
``SELECT … FOR UPDATE`` on the head, jsonb's own key order and REPEATABLE READ verification
are exercised; several processes append to one chain."""

from __future__ import annotations

import pytest

from archive_audit.chain import AuditLog
from archive_state.db import make_engine
from testkit.postgres import PostgresCluster
from tests.integration._audit_postgres import audit, engine  # noqa: F401
from tests.integration.test_state_postgres import new_database
from tests.unit._audit_env import KEY, clock  # noqa: F401
from tests.unit.test_audit_chain import (  # noqa: F401
    append_worker, five, test_a_changed_detail_or_time_is_named, test_a_changed_field_is_named,
    test_a_deleted_last_row_is_named, test_a_deleted_row_is_named,
    test_a_head_set_back_is_named, test_a_replaced_row_breaks_the_link,
    test_an_inserted_row_is_named, test_empty_chain_verifies,
    test_hash_is_hmac_of_prev_and_canonical_json, test_migration_matches_the_models,
    test_record_then_verify, test_values_are_normalised_before_hashing,
    test_verify_reads_in_batches)
from tests.unit.test_audit_door_log import (  # noqa: F401
    log_path, tailer, test_a_tailer_that_lost_the_race_writes_nothing,
    test_open_windows_wait_then_become_rows, test_rotation_reads_the_rest_of_the_old_file_first)
from tests.unit.test_audit_search import (  # noqa: F401
    filled, test_action_outcome_unit_tenant_study,
    test_iterate_reads_everything_newest_first_in_batches, test_newest_first_with_total_and_paging,
    test_operator_ignores_case,
    test_patient_by_chinese_name_id_or_latin_name, test_time_range_is_from_inclusive_to_exclusive)
from tests.unit.test_state_db import run_processes

pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]




def test_concurrent_writers_on_postgres_keep_one_chain(postgres: PostgresCluster) -> None:
    url = new_database(postgres, "control")
    run_processes(append_worker, [(url, w, 25) for w in range(4)], timeout=120)
    engine = make_engine(url)
    try:
        result = AuditLog(engine, KEY).verify()
        assert result.ok and result.checked == 100 and result.head_id == 100
    finally:
        engine.dispose()
