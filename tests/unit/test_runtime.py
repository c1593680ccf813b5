"""The plugin runtime: dispatch tables, one registration per callback, contained failures.

Runs the real adapter against the shared fake SDK (testkit.fake_orthanc), which refuses a second
registration and holds callbacks weakly, as the real Orthanc would punish both.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import regional_archive
from regional_archive.adapters.host import CallbackKind, SdkAdapter
from regional_archive.contributions import Contribution, HealthCheck
from regional_archive.errors import RegistrationError, StartupCheckFailed
from regional_archive.events import ChangeEvent, ChangeType
from regional_archive.runtime import CALLBACKS, Runtime, build_tables
from testkit.fake_orthanc import ChangeType as SdkChange
from testkit.fake_orthanc import ResourceType as SdkResource
from testkit.fake_orthanc import fake_orthanc


@dataclass
class Recorder:
    """A feature that records what it is handed (and can be told to fail)."""

    name: str
    changes: tuple[ChangeType, ...] = ()
    checks: tuple[HealthCheck, ...] = ()
    fail: bool = False
    seen: list[ChangeEvent] = field(default_factory=list)

    def handle(self, event: ChangeEvent) -> None:
        self.seen.append(event)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")

    def contribute(self) -> Contribution:
        return Contribution(on_change={c: (self.handle,) for c in self.changes},
                            health_checks=self.checks)


def check(name: str, problem: str | None, critical: bool = True) -> HealthCheck:
    return HealthCheck(name, f"{name} check", lambda: problem, critical)


def test_dispatch_follows_the_change_type_table() -> None:
    stored = Recorder("a", (ChangeType.NEW_INSTANCE, ChangeType.STABLE_STUDY))
    stable = Recorder("b", (ChangeType.STABLE_STUDY,))
    sdk = fake_orthanc()
    Runtime([stored, stable]).start(SdkAdapter(sdk))

    sdk.fire_change(SdkChange.NEW_INSTANCE, SdkResource.INSTANCE, "i1")
    sdk.fire_change(SdkChange.STABLE_STUDY, SdkResource.STUDY, "s1")
    sdk.fire_change(SdkChange.NEW_SERIES, SdkResource.SERIES, "x")  # nobody asked for it

    assert stored.seen == [ChangeEvent("NewInstance", "Instance", "i1"),
                           ChangeEvent("StableStudy", "Study", "s1")]
    assert stable.seen == [ChangeEvent("StableStudy", "Study", "s1")]


def test_each_callback_is_registered_once_whatever_the_number_of_features() -> None:
    sdk = fake_orthanc()
    features = [Recorder(n, (ChangeType.NEW_INSTANCE,)) for n in ("a", "b", "c")]
    report = Runtime(features).start(SdkAdapter(sdk))
    assert sdk.registrations == ["RegisterOnChangeCallback"]
    assert report.callbacks == (CallbackKind.ON_CHANGE,)
    assert report.features == ("a", "b", "c")


def test_a_callback_nobody_contributes_to_is_not_registered() -> None:
    sdk = fake_orthanc()
    report = Runtime([Recorder("quiet")]).start(SdkAdapter(sdk))
    assert sdk.registrations == []
    assert report.callbacks == ()


def test_a_second_registration_of_a_kind_is_refused_before_orthanc_sees_it() -> None:
    sdk = fake_orthanc()
    adapter = SdkAdapter(sdk)
    adapter.on_change(lambda event: None)
    with pytest.raises(RegistrationError, match="RegisterOnChangeCallback"):
        adapter.on_change(lambda event: None)
    assert sdk.registrations == ["RegisterOnChangeCallback"]


def test_every_callback_spec_names_an_sdk_registration_function() -> None:
    sdk = fake_orthanc()
    for spec in CALLBACKS:
        assert callable(getattr(sdk, spec.kind.value))
    assert {k.value for k in CallbackKind} <= {n for n in dir(sdk) if n.startswith("Register")}


def test_a_failing_handler_is_logged_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    broken = Recorder("broken", (ChangeType.NEW_INSTANCE,), fail=True)
    after = Recorder("after", (ChangeType.NEW_INSTANCE,))
    sdk = fake_orthanc()
    Runtime([broken, after]).start(SdkAdapter(sdk))
    with caplog.at_level(logging.ERROR, logger="regional_archive"):
        sdk.fire_change(SdkChange.NEW_INSTANCE, SdkResource.INSTANCE, "i9")  # must not raise
    assert after.seen == [ChangeEvent("NewInstance", "Instance", "i9")]
    (record,) = [r for r in caplog.records if "broken" in r.getMessage()]
    assert "NewInstance Instance i9" in record.getMessage()
    assert record.exc_info is not None


def test_an_error_outside_the_handlers_does_not_reach_orthanc(
        caplog: pytest.LogCaptureFixture) -> None:
    def dispatch(_event: ChangeEvent) -> None:
        raise KeyError("dispatcher bug")

    sdk = fake_orthanc()
    SdkAdapter(sdk).on_change(dispatch)
    with caplog.at_level(logging.ERROR, logger="regional_archive"):
        sdk.fire_change(SdkChange.DELETED, SdkResource.STUDY, "s")
    assert any("change callback failed" in r.getMessage() for r in caplog.records)


def test_a_critical_check_failure_stops_start_up_before_any_registration() -> None:
    sdk = fake_orthanc()
    feature = Recorder("db", (ChangeType.NEW_INSTANCE,), checks=(check("table", "run migrations"),))
    with pytest.raises(StartupCheckFailed, match="'table' failed: run migrations"):
        Runtime([feature]).start(SdkAdapter(sdk))
    assert sdk.registrations == []


def test_non_critical_check_failures_and_crashing_probes_are_reported() -> None:
    def crash() -> str | None:
        raise OSError("disk gone")

    feature = Recorder("f", checks=(check("soft", "meh", critical=False),
                                    HealthCheck("ok", "fine", lambda: None),
                                    HealthCheck("crash", "raises", crash, critical=False)))
    report = Runtime([feature]).start(SdkAdapter(fake_orthanc()))
    assert [(c.name, c.ok, c.problem) for c in report.checks] == [
        ("soft", False, "meh"), ("ok", True, None), ("crash", False, "OSError: disk gone")]


def test_a_feature_listed_twice_is_refused() -> None:
    with pytest.raises(RegistrationError, match="twice: a"):
        build_tables([Recorder("a"), Recorder("a")])


def test_tables_key_handlers_by_sdk_names_and_keep_feature_order() -> None:
    first = Recorder("first", (ChangeType.DELETED,))
    second = Recorder("second", (ChangeType.DELETED,))
    tables = build_tables([first, second])
    assert list(tables.on_change) == ["Deleted"]
    assert [h.feature for h in tables.on_change["Deleted"]] == ["first", "second"]


def test_unknown_change_values_are_named_not_dropped() -> None:
    seen: list[ChangeEvent] = []
    sdk = fake_orthanc()
    SdkAdapter(sdk).on_change(seen.append)
    sdk.fire_change(99, SdkResource.NONE, "")
    assert seen == [ChangeEvent("Unknown99", "None", "")]




def test_no_module_of_the_package_imports_orthanc() -> None:
    """The SDK is passed in (entry.py imports it); every module runs without Orthanc."""
    package = Path(regional_archive.__file__).parent
    importers = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "orthanc" or n.startswith("orthanc.") for n in names):
                importers.append(path.relative_to(package))
    assert importers == []
