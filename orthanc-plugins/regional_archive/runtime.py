"""The plugin runtime: merges the features' contributions into tables, registers each Orthanc
callback once, and dispatches events to handlers from those tables.

Orthanc accepts one registration of its callbacks (change, received instance, storage area,
worklist, find, move), so registration belongs here, not in features (the event dispatcher of
orthanc-server-extensions). A callback is registered only when some enabled feature contributed
to it: an archive without a worklist feature never answers worklist queries from Python.

Adding a kind of callback is one row of :data:`CALLBACKS` (with its field of
:class:`~.contributions.Contribution`, its table and its dispatcher); the adapter already knows
each SDK registration function by :class:`~.adapters.host.CallbackKind`.

Dispatch contains failures: a change handler that raises is logged with the event and the
feature, and the next handler still runs. Received-instance handlers are a chain: each sees the
bytes the previous one kept or replaced, and the first that diverts the instance ends it. A
received-instance handler that raises diverts the instance with "out of resources" (the sender
is told it was not stored) rather than letting an unchecked instance in. Nothing here imports
``orthanc``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .adapters.host import CallbackKind
from .contributions import ChangeHandler, Feature, HealthCheck
from .errors import RegistrationError, StartupCheckFailed
from .events import ChangeEvent, ChangeType
from .ingest import (KEEP, STATUS_OUT_OF_RESOURCES, IngestAction, IngestDecision,
                     ReceivedInstance, ReceivedInstanceHandler, Sender)

log = logging.getLogger(__name__)


class CallbackHost(Protocol):
    """What the runtime needs of the adapter (:class:`~.adapters.host.SdkAdapter`)."""

    def on_change(self, dispatch: Callable[[ChangeEvent], None],
                  wanted: Collection[str] | None = None) -> None: ...

    def on_received_instance(
        self, dispatch: Callable[[ReceivedInstance], IngestDecision]) -> None: ...


@dataclass(frozen=True)
class NamedHandler:
    """A handler and the feature it came from, for logs."""

    feature: str
    handler: ChangeHandler


@dataclass(frozen=True)
class NamedIngestHandler:
    feature: str
    handler: ReceivedInstanceHandler


@dataclass(frozen=True)
class Tables:
    """Every enabled feature's contributions, merged, in feature order."""

    on_change: Mapping[str, tuple[NamedHandler, ...]] = field(default_factory=dict)
    on_received_instance: tuple[NamedIngestHandler, ...] = ()
    health_checks: tuple[tuple[str, HealthCheck], ...] = ()


def build_tables(features: Sequence[Feature]) -> Tables:
    on_change: dict[str, list[NamedHandler]] = {}
    received: list[NamedIngestHandler] = []
    checks: list[tuple[str, HealthCheck]] = []
    names = [f.name for f in features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RegistrationError(f"features listed twice: {', '.join(duplicates)}")
    for feature in features:
        contribution = feature.contribute()
        for change_type, handlers in contribution.on_change.items():
            key = ChangeType(change_type).value
            on_change.setdefault(key, []).extend(NamedHandler(feature.name, h) for h in handlers)
        received.extend(NamedIngestHandler(feature.name, h)
                        for h in contribution.on_received_instance)
        checks.extend((feature.name, check) for check in contribution.health_checks)
    return Tables(on_change={k: tuple(v) for k, v in on_change.items()},
                  on_received_instance=tuple(received), health_checks=tuple(checks))


@dataclass(frozen=True)
class CallbackSpec:
    """One Orthanc callback: when it is wanted, and how the runtime installs its dispatcher."""

    kind: CallbackKind
    wanted: Callable[[Tables], bool]
    install: Callable[["Runtime", CallbackHost], None]


#: The callbacks the runtime knows how to dispatch. Storage-area, worklist, find and move join
#: here as features come to need them. The received-instance row also installs Orthanc's C-STORE
#: filter (the adapter pairs them: :mod:`.ingest`).
CALLBACKS: tuple[CallbackSpec, ...] = (
    CallbackSpec(
        CallbackKind.ON_CHANGE,
        wanted=lambda tables: bool(tables.on_change),
        install=lambda runtime, host: host.on_change(runtime.dispatch_change,
                                                     frozenset(runtime.tables.on_change)),
    ),
    CallbackSpec(
        CallbackKind.RECEIVED_INSTANCE,
        wanted=lambda tables: bool(tables.on_received_instance),
        install=lambda runtime, host: host.on_received_instance(runtime.dispatch_received),
    ),
)


def _refuse(sender: Sender) -> int:
    return STATUS_OUT_OF_RESOURCES


#: What a handler that raised decides: nothing is kept, the sender is told to try again.
HANDLER_FAILED = IngestDecision.divert(_refuse, "a received-instance handler failed")


@dataclass(frozen=True)
class CheckResult:
    feature: str
    name: str
    problem: str | None
    critical: bool

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class StartReport:
    features: tuple[str, ...]
    callbacks: tuple[CallbackKind, ...]
    checks: tuple[CheckResult, ...]


class Runtime:
    """Dispatch tables for a fixed set of features; built once at start-up."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = tuple(features)
        self.tables: Tables = build_tables(self.features)

    def run_checks(self) -> tuple[CheckResult, ...]:
        """Run every health check; a critical failure raises :class:`StartupCheckFailed`."""
        results: list[CheckResult] = []
        for feature, check in self.tables.health_checks:
            try:
                problem = check.probe()
            except Exception as exc:  # a probe that crashes is a failed check, with its reason
                log.exception("check %s of feature %s raised", check.name, feature)
                problem = f"{type(exc).__name__}: {exc}"
            result = CheckResult(feature, check.name, problem, check.critical)
            results.append(result)
            if problem is not None and check.critical:
                raise StartupCheckFailed(check.name, problem)
            if problem is not None:
                log.warning("check %s of feature %s failed: %s", check.name, feature, problem)
        return tuple(results)

    def install(self, host: CallbackHost) -> tuple[CallbackKind, ...]:
        """Register, through ``host``, each callback some feature contributed to, once."""
        installed: list[CallbackKind] = []
        for spec in CALLBACKS:
            if spec.wanted(self.tables):
                spec.install(self, host)
                installed.append(spec.kind)
        return tuple(installed)

    def start(self, host: CallbackHost) -> StartReport:
        """Checks first (a failing one registers nothing), then the callbacks."""
        checks = self.run_checks()
        callbacks = self.install(host)
        return StartReport(tuple(f.name for f in self.features), callbacks, checks)

    def dispatch_change(self, event: ChangeEvent) -> None:
        """Call every handler contributed for ``event.change_type``, in feature order.

        One handler's exception is logged with the event and does not stop the others.
        """
        for named in self.tables.on_change.get(event.change_type, ()):
            try:
                named.handler(event)
            except Exception:
                log.exception("feature %s failed on %s %s %s", named.feature,
                              event.change_type, event.resource_type, event.resource_id)

    def dispatch_received(self, instance: ReceivedInstance) -> IngestDecision:
        """Run the received-instance chain; a replacement is what the next handler sees."""
        current, replaced = instance, False
        for named in self.tables.on_received_instance:
            try:
                decision = named.handler(current)
            except Exception:
                log.exception("feature %s failed on a received instance (%s, %d bytes): "
                              "refused", named.feature, instance.origin, len(instance.data))
                return HANDLER_FAILED
            if decision.action is IngestAction.DIVERT:
                return decision
            if decision.action is IngestAction.REPLACE and decision.data is not None:
                current, replaced = ReceivedInstance(decision.data, instance.origin), True
        return IngestDecision.replace(current.data, "repaired") if replaced else KEEP
