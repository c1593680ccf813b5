"""The tenant's known modalities: what a valid one is (PS3.5 AE titles, addresses, ports) and
the store on a real SQLite state database brought to the schema by the real migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from archive_state.db import make_engine
from archive_state.modalities import (
    InvalidModality,
    ModalityExists,
    ModalityNotFound,
    ModalitySpec,
    ModalityStore,
    Operation,
)
from tests.unit.test_state_db import schema_differences
from tests.unit.test_state_jobs import T0, ManualClock, migrated_sqlite, sqlite_state_url  # noqa: F401


def spec(**changes: object) -> ModalitySpec:
    values: dict[str, object] = {"name": "ct-room-1", "ae_title": "CT_ROOM_1",
                                 "host": "10.1.2.3", "port": 104}
    values.update(changes)
    return ModalitySpec(**values)  # type: ignore[arg-type]


# --- what a valid modality is ---------------------------------------------------------------

@pytest.mark.parametrize("ae_title", ["A", "CT_ROOM_1", "X" * 16, "MR 3T", "ct-2@site.b"])
def test_valid_ae_titles(ae_title: str) -> None:
    assert spec(ae_title=ae_title).ae_title == ae_title


def test_outer_spaces_of_an_ae_title_are_not_significant() -> None:
    assert spec(ae_title="  CT1 ").ae_title == "CT1"
    assert spec(ae_title=" " + "X" * 16 + " ").ae_title == "X" * 16


@pytest.mark.parametrize(("ae_title", "problem"), [
    ("X" * 17, "at most 16"),
    ("CT\\1", "backslash"),
    ("CT\n1", "printable ASCII"),
    ("CT\x1b1", "printable ASCII"),
    ("放射科", "printable ASCII"),
    ("", "empty"),
    ("    ", "empty"),
])
def test_invalid_ae_titles(ae_title: str, problem: str) -> None:
    with pytest.raises(InvalidModality, match=problem) as caught:
        spec(ae_title=ae_title)
    assert caught.value.field == "ae_title" and caught.value.zh


@pytest.mark.parametrize("port", [1, 104, 11112, 65535])
def test_valid_ports(port: int) -> None:
    assert spec(port=port).port == port


@pytest.mark.parametrize("port", [0, -1, 65536, True])
def test_invalid_ports(port: int) -> None:
    with pytest.raises(InvalidModality) as caught:
        spec(port=port)
    assert caught.value.field == "port"


def test_hosts_are_ip_addresses_in_one_spelling() -> None:
    assert spec(host="192.168.10.5").host == "192.168.10.5"
    assert spec(host="2001:DB8:0:0::1").host == "2001:db8::1"


def test_a_host_name_only_for_a_modality_that_never_calls_in() -> None:
    with pytest.raises(InvalidModality, match="IP address") as caught:
        spec(host="pacs.hospital-b.example")
    assert caught.value.field == "host"
    destination = spec(host="pacs.hospital-b.example", operations=frozenset())
    assert destination.host == "pacs.hospital-b.example" and not destination.operations


@pytest.mark.parametrize("host", ["999.1.1.1", "10.0.0", "bad_host", "-a.example", "", "a..b"])
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(InvalidModality) as caught:
        spec(host=host, operations=frozenset())
    assert caught.value.field == "host"


@pytest.mark.parametrize(("field", "value"), [
    ("name", "ct room"), ("name", "ct/1"), ("name", ""), ("name", "x" * 65),
    ("manufacturer", "Siemens"), ("description", "长" * 201),
])
def test_other_invalid_fields(field: str, value: str) -> None:
    with pytest.raises(InvalidModality) as caught:
        spec(**{field: value})
    assert caught.value.field == field


def test_operations_accept_their_names() -> None:
    made = spec(operations=frozenset({"get", "move"}))
    assert made.operations == {Operation.GET, Operation.MOVE}
    assert made.allows("get") and not made.allows(Operation.STORE)
    assert spec().operations == {Operation.ECHO, Operation.STORE}
    with pytest.raises(ValueError):
        spec(operations=frozenset({"print"}))


# --- the store -------------------------------------------------------------------------------

@pytest.fixture
def engine(migrated_sqlite: Path, tmp_path: Path) -> Engine:
    return make_engine(sqlite_state_url(migrated_sqlite, tmp_path))


def test_the_migration_makes_the_models_table(migrated_sqlite: Path, tmp_path: Path) -> None:
    assert schema_differences(sqlite_state_url(migrated_sqlite, tmp_path), "state") == []


def test_create_list_get(engine: Engine) -> None:
    clock = ManualClock()
    store = ModalityStore(engine, "hosp-a", clock)
    first = store.create(spec(name="mr-1", ae_title="MR1", description="放射科 3T 磁共振",
                              operations=frozenset({"store", "find", "get"}), use_tls=True,
                              manufacturer="GE"), by="admin")
    clock.advance(5)
    store.create(spec(name="ct-1"), by=None)
    assert first.created_at == first.updated_at == T0 and first.created_by == "admin"
    assert [m.name for m in store.list()] == ["ct-1", "mr-1"]
    got = store.get("mr-1")
    assert got.spec == first.spec and got.tenant == "hosp-a"
    assert got.spec.description == "放射科 3T 磁共振" and got.spec.use_tls
    assert got.spec.operations == {Operation.STORE, Operation.FIND, Operation.GET}


def test_a_name_is_taken_once(engine: Engine) -> None:
    store = ModalityStore(engine, "hosp-a")
    store.create(spec(), by="admin")
    with pytest.raises(ModalityExists) as caught:
        store.create(spec(ae_title="OTHER"), by="admin")
    assert caught.value.status == 409
    assert store.get("ct-room-1").spec.ae_title == "CT_ROOM_1"


def test_several_modalities_may_share_an_ae_title(engine: Engine) -> None:
    store = ModalityStore(engine, "hosp-a")
    store.create(spec(name="ct-a", ae_title="CT", host="10.0.0.1"), by=None)
    store.create(spec(name="ct-b", ae_title="CT", host="10.0.0.2"), by=None)
    assert [m.spec.host for m in store.list()] == ["10.0.0.1", "10.0.0.2"]


def test_update_replaces_the_definition_and_keeps_its_creation(engine: Engine) -> None:
    clock = ManualClock()
    store = ModalityStore(engine, "hosp-a", clock)
    store.create(spec(), by="admin")
    clock.advance(60)
    after = store.update(spec(port=11112, operations=frozenset({"echo"}), description="新端口"),
                         by="tech")
    assert after.spec.port == 11112 and after.spec.operations == {Operation.ECHO}
    assert (after.created_at, after.created_by) == (T0, "admin")
    assert after.updated_at == clock.now and after.updated_by == "tech"
    with pytest.raises(ModalityNotFound):
        store.update(spec(name="nobody"), by="tech")


def test_delete_returns_what_it_was(engine: Engine) -> None:
    store = ModalityStore(engine, "hosp-a")
    made = store.create(spec(), by=None)
    assert store.delete("ct-room-1").spec == made.spec
    assert store.list() == []
    with pytest.raises(ModalityNotFound) as caught:
        store.delete("ct-room-1")
    assert caught.value.status == 404
    with pytest.raises(ModalityNotFound):
        store.get("ct-room-1")


def test_tenants_do_not_see_each_others_modalities(engine: Engine) -> None:
    a, b = ModalityStore(engine, "hosp-a"), ModalityStore(engine, "hosp-b")
    a.create(spec(), by=None)
    b.create(spec(ae_title="B_CT"), by=None)
    assert [m.spec.ae_title for m in a.list()] == ["CT_ROOM_1"]
    assert [m.spec.ae_title for m in b.list()] == ["B_CT"]
    b.delete("ct-room-1")
    assert len(a.list()) == 1
