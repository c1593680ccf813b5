"""The received-instance chain and the adapter's pairing of it with Orthanc's C-STORE filter,
on the fake SDK of both plugin versions (the real pairing is covered by the gate's integration
tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from regional_archive.adapters.host import CallbackKind, SdkAdapter
from regional_archive.contributions import Contribution
from regional_archive.ingest import (STATUS_OUT_OF_RESOURCES, STATUS_QUARANTINED, IngestAction,
                                     IngestDecision, InstanceOrigin, ReceivedInstance, Sender,
                                     is_failure)
from regional_archive.runtime import Runtime
from testkit.fake_orthanc import FakeOrthanc, InstanceOrigin as SdkOrigin, fake_orthanc


@dataclass
class Gate:
    """A received-instance feature: diverts bytes that contain ``marker``, repairs ``fix``."""

    name: str = "gate"
    marker: bytes = b"POISON"
    fix: tuple[bytes, bytes] = (b"latin", b"GB18030")
    commit_status: int = STATUS_QUARANTINED
    explode: bool = False
    seen: list[ReceivedInstance] = field(default_factory=list)
    committed: list[tuple[bytes, Sender]] = field(default_factory=list)

    def handle(self, instance: ReceivedInstance) -> IngestDecision:
        self.seen.append(instance)
        if self.explode:
            raise ValueError("checker bug")
        if self.marker in instance.data:
            def commit(sender: Sender) -> int:
                self.committed.append((instance.data, sender))
                return self.commit_status
            return IngestDecision.divert(commit, "poison")
        if self.fix[0] in instance.data:
            return IngestDecision.replace(instance.data.replace(*self.fix), "charset")
        return IngestDecision.keep()

    def contribute(self) -> Contribution:
        return Contribution(on_received_instance=(self.handle,))


def start(*features: Gate, version: str = "4.0") -> FakeOrthanc:
    sdk = fake_orthanc("5.0" if version == "5.0" else "4.0")
    adapter = SdkAdapter(sdk)
    report = Runtime(features).start(adapter)
    assert report.callbacks == (CallbackKind.RECEIVED_INSTANCE,)
    sdk.adapter = adapter  # type: ignore[attr-defined]  # kept alive like the entry script does
    return sdk


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_both_hooks_are_registered_once(version: str) -> None:
    sdk = start(Gate(), version=version)
    assert sdk.registrations == ["RegisterReceivedInstanceCallback",
                                 "RegisterIncomingCStoreInstanceFilter"]


@pytest.mark.parametrize("origin", [SdkOrigin.DICOM_PROTOCOL, SdkOrigin.REST_API,
                                    SdkOrigin.PLUGIN])
def test_a_clean_instance_is_kept_as_received(origin: int) -> None:
    gate = Gate()
    sdk = start(gate)
    outcome = sdk.ingest(b"clean bytes", origin)
    assert outcome.stored == b"clean bytes"
    assert outcome.dimse_status in (None, 0)
    assert gate.committed == []
    assert gate.seen[0].origin is {SdkOrigin.DICOM_PROTOCOL: InstanceOrigin.DICOM_PROTOCOL,
                                   SdkOrigin.REST_API: InstanceOrigin.REST_API,
                                   SdkOrigin.PLUGIN: InstanceOrigin.PLUGIN}[origin]


def test_a_repair_replaces_the_bytes_orthanc_indexes() -> None:
    sdk = start(Gate())
    assert sdk.ingest(b"name latin", SdkOrigin.REST_API).stored == b"name GB18030"
    assert sdk.ingest(b"name latin", SdkOrigin.DICOM_PROTOCOL).stored == b"name GB18030"


def test_a_diverted_c_store_is_committed_by_the_filter_with_the_calling_ae() -> None:
    gate = Gate()
    sdk = start(gate)
    outcome = sdk.ingest(b"POISON pixels", SdkOrigin.DICOM_PROTOCOL, remote_aet="CT_ROOM_2")
    assert outcome.stored is None
    assert outcome.dimse_status == STATUS_QUARANTINED
    assert gate.committed == [(b"POISON pixels", Sender(calling_aet="CT_ROOM_2"))]
    # the next instance on the same thread is not touched by the previous diversion
    after = sdk.ingest(b"clean", SdkOrigin.DICOM_PROTOCOL)
    assert (after.stored, after.dimse_status) == (b"clean", 0)


@pytest.mark.parametrize("origin", [SdkOrigin.REST_API, SdkOrigin.PLUGIN])
def test_a_diverted_upload_is_discarded_after_its_commit(origin: int) -> None:
    gate = Gate()
    sdk = start(gate)
    outcome = sdk.ingest(b"POISON", origin)
    assert outcome.stored is None and outcome.http_error is None
    assert gate.committed == [(b"POISON", Sender())]


def test_a_commit_that_fails_tells_the_sender_nothing_was_kept() -> None:
    sdk = start(Gate(commit_status=STATUS_OUT_OF_RESOURCES))
    dimse = sdk.ingest(b"POISON", SdkOrigin.DICOM_PROTOCOL)
    assert dimse.stored is None and dimse.dimse_status == STATUS_OUT_OF_RESOURCES
    http = sdk.ingest(b"POISON", SdkOrigin.REST_API)
    assert http.stored is None and http.http_error is not None
    assert "0xA700" in str(http.http_error)


def test_a_handler_that_raises_refuses_the_instance_instead_of_letting_it_in() -> None:
    sdk = start(Gate(explode=True))
    dimse = sdk.ingest(b"anything", SdkOrigin.DICOM_PROTOCOL)
    assert dimse.stored is None and is_failure(dimse.dimse_status or 0)
    assert sdk.ingest(b"anything", SdkOrigin.REST_API).http_error is not None


def test_the_chain_hands_a_repair_on_and_stops_at_a_diversion() -> None:
    first = Gate(name="first", marker=b"never", fix=(b"a", b"POISON"))
    second = Gate(name="second")
    runtime = Runtime([first, second])
    decision = runtime.dispatch_received(ReceivedInstance(b"a", InstanceOrigin.REST_API))
    assert second.seen[0].data == b"POISON"
    assert decision.action is IngestAction.DIVERT
    clean = runtime.dispatch_received(ReceivedInstance(b"zzz", InstanceOrigin.REST_API))
    assert clean.action is IngestAction.KEEP


def test_failure_statuses() -> None:
    assert not is_failure(0) and not is_failure(STATUS_QUARANTINED)
    assert is_failure(STATUS_OUT_OF_RESOURCES) and is_failure(0xC000)
