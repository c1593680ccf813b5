"""The ingest-gate feature applies a verdict on the ingest path: keep, repair (recorded),
quarantine (spooled before the sender is answered), refuse when the spool cannot be written.
The verdicts come from a table here; archive_gate's own tests cover the checks."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from archive_gate.verdict import Action, Identity, Reason, Repair, Verdict
from archive_state import quarantine_spool
from regional_archive.adapters.host import SdkAdapter
from regional_archive.features.ingest_gate import CONFLICT, IngestGateFeature
from regional_archive.ingest import (STATUS_OUT_OF_RESOURCES, STATUS_QUARANTINED, IngestAction,
                                     InstanceOrigin, ReceivedInstance, Sender)
from regional_archive.runtime import Runtime
from testkit.fake_orthanc import InstanceOrigin as SdkOrigin, fake_orthanc
from tests.unit.test_gate_content import dicom_bytes

WHO = Identity(sop_instance_uid="1.2.3.4", study_instance_uid="1.2.3", patient_id="P001",
               patient_name="张^伟", sop_class_uid="1.2.840.10008.5.1.4.1.1.2")
ROWS = Reason("pixel-vr", 0x00280010, "Rows has VR DS, the image pixel module requires US")
VERDICTS: Mapping[bytes, Verdict] = {
    b"good": Verdict(Action.ACCEPT, identity=WHO),
    b"poison": Verdict(Action.QUARANTINE, (ROWS,), WHO),
    b"latin": Verdict(Action.REPAIR, (Reason("charset-relabelled", 0x00080005, "GB18030"),), WHO,
                      repaired=b"fixed",
                      repairs=(Repair(0x00080005, "ISO_IR 100", "GB18030", "CJK bytes"),)),
}


def feature(tmp_path: Path, **extra: Any) -> IngestGateFeature:
    return IngestGateFeature(lambda data: VERDICTS[data], tmp_path, "hospital-a",
                             now=lambda: "2026-12-02T13:00:00.000+00:00", **extra)


def test_an_accepted_instance_is_kept_and_nothing_is_written(tmp_path: Path) -> None:
    gate = feature(tmp_path)
    assert gate.handle(ReceivedInstance(b"good", InstanceOrigin.REST_API)).action is IngestAction.KEEP
    assert not gate.spool.exists() or not any(gate.spool.iterdir())


def test_a_quarantined_c_store_is_spooled_with_its_sender_then_answered_0xb007(
        tmp_path: Path) -> None:
    gate = feature(tmp_path)
    decision = gate.handle(ReceivedInstance(b"poison", InstanceOrigin.DICOM_PROTOCOL))
    assert decision.action is IngestAction.DIVERT
    assert not gate.spool.exists()  # nothing written before the filter knows the sender
    assert decision.commit(Sender("CT_ROOM_2")) == STATUS_QUARANTINED
    entry = quarantine_spool.read_entry(gate.spool, quarantine_spool.entry_id(b"poison"))
    assert entry is not None
    assert entry.meta["transport"] == "dimse" and entry.meta["tenant"] == "hospital-a"
    assert entry.meta["remote"] == {"calling_aet": "CT_ROOM_2"}
    assert entry.meta["reasons"] == [{"code": "pixel-vr", "tag": "(0028,0010)",
                                      "message": ROWS.message}]
    assert entry.meta["patient_name"] == "张^伟" and entry.meta["sop_instance_uid"] == "1.2.3.4"
    data = quarantine_spool.data_path(gate.spool, entry.id)
    assert data.read_bytes() == b"poison"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600


def test_the_same_bytes_twice_make_one_entry(tmp_path: Path) -> None:
    gate = feature(tmp_path)
    for _ in range(2):
        gate.handle(ReceivedInstance(b"poison", InstanceOrigin.REST_API)).commit(Sender())
    assert quarantine_spool.list_entries(gate.spool) == [quarantine_spool.entry_id(b"poison")]


def test_a_spool_that_cannot_be_written_refuses_the_instance(tmp_path: Path) -> None:
    def full(folder: Path, data: bytes, meta: Mapping[str, Any]) -> str:
        raise OSError(28, "No space left on device")

    gate = feature(tmp_path, write_spool=full)
    decision = gate.handle(ReceivedInstance(b"poison", InstanceOrigin.DICOM_PROTOCOL))
    assert decision.commit(Sender("CT")) == STATUS_OUT_OF_RESOURCES


def test_a_repair_is_indexed_and_recorded_for_the_client(tmp_path: Path) -> None:
    gate = feature(tmp_path)
    decision = gate.handle(ReceivedInstance(b"latin", InstanceOrigin.REST_API))
    assert decision.action is IngestAction.REPLACE and decision.data == b"fixed"
    record = gate.repaired / f"{quarantine_spool.entry_id(b'latin')}.json"
    document = json.loads(record.read_text())
    assert document["repaired_sha256"] == quarantine_spool.entry_id(b"fixed")
    assert document["repairs"] == [{"tag": "(0008,0005)", "before": "ISO_IR 100",
                                    "after": "GB18030", "why": "CJK bytes"}]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_through_the_sdk_every_way_in_ends_stored_or_spooled(tmp_path: Path,
                                                              version: str) -> None:
    sdk = fake_orthanc("5.0" if version == "5.0" else "4.0")
    adapter = SdkAdapter(sdk)
    gate = feature(tmp_path)
    Runtime([gate]).start(adapter)
    assert sdk.ingest(b"good", SdkOrigin.DICOM_PROTOCOL).stored == b"good"
    assert sdk.ingest(b"latin", SdkOrigin.PLUGIN).stored == b"fixed"
    dimse = sdk.ingest(b"poison", SdkOrigin.DICOM_PROTOCOL, remote_aet="MR_1")
    assert (dimse.stored, dimse.dimse_status) == (None, STATUS_QUARANTINED)
    rest = sdk.ingest(b"poison", SdkOrigin.REST_API)
    assert rest.stored is None and rest.http_error is None
    assert quarantine_spool.list_entries(gate.spool) == [quarantine_spool.entry_id(b"poison")]


def test_the_start_up_check_names_an_unwritable_spool(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "file-not-folder"
        blocked.write_text("x")
        gate = IngestGateFeature(lambda d: VERDICTS[d], blocked, "t")
    else:  # pragma: no cover - the suite runs as root
        tmp_path.chmod(0o500)
        gate = feature(tmp_path)
    problem = gate.spool_problem()
    assert problem is not None and "quarantine folder" in problem


def test_a_uid_stored_with_other_content_is_quarantined_the_same_content_kept(
        tmp_path: Path) -> None:
    original = dicom_bytes(patient_name="Li^Na")
    stored = {"1.2.3.4": original}
    resent = dicom_bytes(patient_name="Li^Na", implementation="1.2.276.0.7230010.3.0.3.6.7")
    changed = dicom_bytes(patient_name="Wang^Fang")
    gate = IngestGateFeature(lambda d: Verdict(Action.ACCEPT, identity=WHO), tmp_path, "t",
                             stored_instance=stored.get)
    again = gate.handle(ReceivedInstance(resent, InstanceOrigin.DICOM_PROTOCOL))
    assert again.action is IngestAction.KEEP  # Orthanc answers AlreadyStored: stored once
    conflict = gate.handle(ReceivedInstance(changed, InstanceOrigin.DICOM_PROTOCOL))
    assert conflict.action is IngestAction.DIVERT
    assert conflict.commit(Sender("CT")) == STATUS_QUARANTINED
    entry = quarantine_spool.read_entry(gate.spool, quarantine_spool.entry_id(changed))
    assert entry is not None
    assert [r["code"] for r in entry.meta["reasons"]] == [CONFLICT]
    assert entry.meta["reasons"][0]["tag"] == "(0008,0018)"


def test_the_adapter_reads_a_stored_instance_or_none() -> None:
    sdk = fake_orthanc("4.0")
    sdk.instances["1.2.3"] = b"file"
    adapter = SdkAdapter(sdk)
    assert adapter.stored_instance("1.2.3") == b"file"
    assert adapter.stored_instance("9.9") is None


def test_a_new_series_costs_one_series_lookup_not_one_per_instance(tmp_path: Path) -> None:
    asked: list[str] = []

    def stored(uid: str) -> bytes | None:
        asked.append(uid)
        return None

    def series_known(uid: str) -> bool:
        asked.append(f"series {uid}")
        return False

    who = [Identity(sop_instance_uid=f"1.2.3.1.{n}", series_instance_uid="1.2.3.1")
           for n in range(3)]
    verdicts = {f"i{n}".encode(): Verdict(Action.ACCEPT, identity=w) for n, w in enumerate(who)}
    gate = IngestGateFeature(lambda d: verdicts[d], tmp_path, "t", stored_instance=stored,
                             has_series=series_known)
    for n in range(3):
        assert gate.handle(ReceivedInstance(f"i{n}".encode(), InstanceOrigin.DICOM_PROTOCOL)
                           ).action is IngestAction.KEEP
    assert gate.handle(ReceivedInstance(b"i0", InstanceOrigin.DICOM_PROTOCOL)
                       ).action is IngestAction.KEEP  # seen again: the index is asked
    assert asked == ["series 1.2.3.1", "1.2.3.1.0"]
