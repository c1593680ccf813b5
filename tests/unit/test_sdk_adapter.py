"""The SDK adapter: plugin 4.0 vs 5.0, callbacks kept alive, enumerations mapped to names."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from regional_archive.adapters.host import SdkAdapter, enum_names
from regional_archive.events import ChangeEvent, ChangeType, ResourceType
from testkit.fake_orthanc import CallbackCollected, PluginVersion, fake_orthanc
from testkit.fake_orthanc import ChangeType as SdkChange


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_send_http_status_uses_the_signature_of_the_running_plugin(version: PluginVersion) -> None:
    sdk = fake_orthanc(version)
    adapter = SdkAdapter(sdk)
    output = sdk.rest_output()
    body = '{"title": "未找到"}'.encode()
    adapter.send_http_status(output, 404, body)
    assert (output.status, output.body) == (404, body)
    assert adapter.http_status_takes_size is (version == "4.0")


@pytest.mark.parametrize(("version", "other"), [("4.0", "5.0"), ("5.0", "4.0")])
def test_the_other_plugins_signature_is_refused_by_the_fake(
        version: PluginVersion, other: PluginVersion) -> None:
    """The fake really distinguishes the two, so the test above can fail."""
    wrong = SdkAdapter(fake_orthanc(other))
    with pytest.raises(TypeError):
        wrong.send_http_status(fake_orthanc(version).rest_output(), 400, b"x")


def test_registered_callbacks_survive_garbage_collection() -> None:
    sdk = fake_orthanc("5.0")
    adapter = SdkAdapter(sdk)
    seen: list[ChangeEvent] = []
    adapter.on_change(seen.append)  # a closure is made and registered inside
    gc.collect()
    sdk.fire_change(SdkChange.NEW_STUDY, 1, "s")
    assert seen == [ChangeEvent("NewStudy", "Study", "s")]
    assert len(adapter.kept) == 1


def test_the_fake_notices_a_collected_callback() -> None:
    """Why the test above can fail: without the adapter's reference the closure dies."""
    sdk = fake_orthanc("5.0")
    sdk.RegisterOnChangeCallback(lambda c, r, i: None)
    gc.collect()
    with pytest.raises(CallbackCollected):
        sdk.fire_change(SdkChange.NEW_STUDY, 1, "s")


def test_enumerations_are_read_from_the_sdk_and_match_our_names() -> None:
    sdk = fake_orthanc()
    assert set(enum_names(sdk.ChangeType).values()) == {c.value for c in ChangeType}
    assert set(enum_names(sdk.ResourceType).values()) == {r.value for r in ResourceType}
    assert SdkAdapter(sdk).change_event(9, 1, "abc") == ChangeEvent("StableStudy", "Study", "abc")


def test_configuration_and_its_path_come_from_the_sdk(tmp_path: Path) -> None:
    sdk = fake_orthanc(configuration={"Archive": {"Tenant": "t"}},
                       arguments=["--verbose", str(tmp_path / "config")])
    adapter = SdkAdapter(sdk)
    assert adapter.configuration() == {"Archive": {"Tenant": "t"}}
    assert adapter.configuration_path() == (tmp_path / "config").resolve()
    assert SdkAdapter(fake_orthanc(arguments=["--verbose"])).configuration_path() is None


def test_a_log_line_quoting_a_nul_still_reaches_orthancs_log() -> None:
    """A malformed PatientID with a NUL, quoted by the gate, must not lose the whole line."""
    import logging

    from regional_archive.adapters.orthanc_logging import install

    sdk = fake_orthanc("4.0")
    logger = install(sdk)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        logging.getLogger("regional_archive.features.ingest_gate").warning(
            "quarantined instance of patient %s", "P1\x00\x00")
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
    assert sdk.logs[-1] == ("warning", "[regional_archive.features.ingest_gate] quarantined "
                                       "instance of patient P1\\x00\\x00")


def test_change_types_nobody_handles_return_before_any_event_is_made() -> None:
    sdk = fake_orthanc("4.0")
    adapter = SdkAdapter(sdk)
    seen: list[ChangeEvent] = []
    adapter.on_change(seen.append, wanted={"StableStudy"})
    sdk.fire_change(SdkChange.NEW_INSTANCE, 3, "i-1")
    sdk.fire_change(SdkChange.NEW_CHILD_INSTANCE, 1, "s-1")
    sdk.fire_change(SdkChange.STABLE_STUDY, 1, "s-1")
    assert [e.change_type for e in seen] == [ChangeType.STABLE_STUDY]
