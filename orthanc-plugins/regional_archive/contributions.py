"""What a feature may contribute to the runtime: plain data, no ``orthanc`` import.

A feature is a small object with a ``name`` and a ``contribute()`` that returns a
:class:`Contribution`: handlers keyed by event (for now, by change type), and start-up checks.
The runtime (:mod:`.runtime`) merges every enabled feature's contribution into dispatch tables
and registers each Orthanc callback once, only if some feature contributed to it. This is the
event-dispatcher pattern of orthanc-server-extensions: Orthanc accepts one registration of most
callbacks, so features never register anything themselves.

One handler signature per kind of event: a change handler takes a :class:`~.events.ChangeEvent`
and returns nothing; a received-instance handler takes a :class:`~.ingest.ReceivedInstance`
(every instance before Orthanc indexes it) and returns an :class:`~.ingest.IngestDecision`.
Handlers run on Orthanc's threads; they must be quick and must not call the SDK
(docs/decisions.md, "The plugin inside Orthanc").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .events import ChangeEvent, ChangeType
from .ingest import ReceivedInstanceHandler

#: Called once per change event of a type the handler was contributed for.
ChangeHandler = Callable[[ChangeEvent], None]


@dataclass(frozen=True)
class HealthCheck:
    """A named check the runtime runs at start-up.

    ``probe`` returns ``None`` when all is well, otherwise the problem in words that say what to
    do. A failing ``critical`` check stops Orthanc (better than an archive that loses events);
    a failing non-critical one is logged as a warning. The result is part of the start-up line.
    """

    name: str
    description: str
    probe: Callable[[], str | None]
    critical: bool = True


@dataclass(frozen=True)
class Contribution:
    """Everything one feature adds. Empty fields mean "nothing of this kind"."""

    on_change: Mapping[ChangeType, Sequence[ChangeHandler]] = field(default_factory=dict)
    on_received_instance: Sequence[ReceivedInstanceHandler] = ()
    health_checks: Sequence[HealthCheck] = ()


class Feature(Protocol):
    """A capability of the plugin. Built with its dependencies (settings, database) passed in."""

    @property
    def name(self) -> str: ...

    def contribute(self) -> Contribution: ...
