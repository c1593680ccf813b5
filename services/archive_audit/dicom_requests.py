"""DIMSE requests put together from Orthanc's log facts (:mod:`archive_audit.orthanc_log`). Pure.

A request starts with its ``Incoming … request`` line, which names the calling AE, its address
and the called AE. Lines after it complete it: a refusal (``Rejected Get request … AET "A"``),
a C-MOVE's destination, what a C-MOVE or C-GET sends, a failure. Those lines do not all name
the caller, so each is given to the open request it belongs to:

- on Orthanc 1.12 every line names its thread, and one association runs on one thread, so a
  line belongs to the newest open request of its thread that fits: exact;
- Orthanc 1.10 names no thread: the line goes to the newest open request that fits (a refusal:
  same AE title, address and type; a resource sent by C-MOVE: the C-MOVE with that
  destination; by C-GET: the C-GET of that AE title; a destination: the oldest C-MOVE still
  without one). Only two C-MOVEs of different callers arriving within the same few
  milliseconds can swap their destinations.

A refused association is a request of its own (type ``Associate``), complete at once. A request
is *settled* (handed on, never changed again) once the log has gone on past :data:`SETTLE`
after it started (a C-MOVE or C-GET) or :data:`SETTLE_QUICK` (anything else, whose only
completing line is a refusal written right after it), or has nothing more: the lines that
complete a request follow it within milliseconds. Open requests are kept in the tailer's state
between runs (:meth:`to_json`), so the short delay for the many C-STOREs keeps that state small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from . import orthanc_log as ol

__all__ = ["DimseRequest", "SETTLE", "SETTLE_QUICK", "Tracker"]

SETTLE = timedelta(seconds=10)
SETTLE_QUICK = timedelta(seconds=1)
#: Requests that lines after them complete with more than a refusal.
_SLOW = frozenset({"Move", "Get"})
Outcome = Literal["success", "failure", "denied"]


@dataclass(frozen=True)
class DimseRequest:
    """One DIMSE request (or refused association) as the audit counts it."""

    at: datetime
    #: Orthanc's name of the request's type (``Echo``, ``Store``, ``Find``, ``FindWorklist``,
    #: ``Get``, ``Move``, ``NAction``…), or ``Associate`` for a refused association.
    request: str
    aet: str
    ip: str | None
    called: str | None = None
    thread: str | None = None
    destination: str | None = None
    #: Orthanc ids of what a C-MOVE or C-GET sends.
    resources: tuple[str, ...] = ()
    outcome: Outcome = "success"
    #: Why it was refused or failed: ``unknown-ae``, ``called-ae``, ``not-allowed``,
    #: ``unknown-destination``, ``handler-failed``.
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "request": self.request, "aet": self.aet,
                "ip": self.ip, "called": self.called, "thread": self.thread,
                "destination": self.destination, "resources": list(self.resources),
                "outcome": self.outcome, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DimseRequest":
        outcome = data.get("outcome")
        return cls(datetime.fromisoformat(data["at"]), str(data["request"]), str(data["aet"]),
                   data.get("ip"), data.get("called"), data.get("thread"),
                   data.get("destination"), tuple(str(r) for r in data.get("resources") or ()),
                   outcome if outcome in ("success", "failure", "denied") else "success",
                   data.get("reason"))


def _settles_at(request: DimseRequest) -> datetime:
    return request.at + (SETTLE if request.request in _SLOW else SETTLE_QUICK)


def _same_thread(request: DimseRequest, fact: ol.Fact) -> bool:
    return request.thread is None or fact.thread is None or request.thread == fact.thread


class Tracker:
    """Feeds facts in log order; :meth:`settle` hands on the requests that are complete."""

    def __init__(self, open_requests: Iterable[DimseRequest] = ()) -> None:
        self.open: list[DimseRequest] = list(open_requests)
        self._settled: list[DimseRequest] = []
        #: The called AE of the newest ``Incoming connection`` per (AE, address), for a refusal.
        self._called: dict[tuple[str, str], str] = {}
        #: The newest ``Association Received`` (the acceptor logs them one at a time).
        self._received: ol.AssociationReceived | None = None

    def feed_all(self, facts: Iterable[ol.Fact]) -> None:
        for fact in facts:
            self.feed(fact)

    def feed(self, fact: ol.Fact) -> None:
        if isinstance(fact, ol.Connection):
            self._called[(fact.aet, fact.ip)] = fact.called
            if len(self._called) > 1000:
                self._called.pop(next(iter(self._called)))
        elif isinstance(fact, ol.AssociationReceived):
            self._received = fact
        elif isinstance(fact, ol.AssociationRefused):
            self._settled.append(DimseRequest(
                fact.at, "Associate", fact.aet, fact.ip, self._called.get((fact.aet, fact.ip)),
                fact.thread, outcome="denied", reason="unknown-ae"))
        elif isinstance(fact, ol.CalledAetRefused):
            received = self._received
            self._settled.append(DimseRequest(
                fact.at, "Associate", received.aet if received else "",
                received.ip if received else None, fact.called, fact.thread, outcome="denied",
                reason="called-ae"))
        elif isinstance(fact, ol.Request):
            self.open.append(DimseRequest(fact.at, fact.request, fact.aet, fact.ip, fact.called,
                                          fact.thread))
        else:
            self._complete(fact)

    def _complete(self, fact: ol.Fact) -> None:
        if isinstance(fact, ol.RequestRefused):
            self._update(fact, lambda r: (r.request == fact.request and r.aet == fact.aet
                                          and r.ip == fact.ip and r.outcome == "success"),
                         lambda r: replace(r, outcome="denied", reason="not-allowed"))
        elif isinstance(fact, ol.MoveDestination):
            self._update(fact, lambda r: r.request == "Move" and r.destination is None,
                         lambda r: replace(r, destination=fact.destination), oldest=True)
        elif isinstance(fact, ol.MoveResource):
            self._update(fact, lambda r: r.request == "Move" and r.destination == fact.destination,
                         lambda r: replace(r, resources=(*r.resources, fact.resource)))
        elif isinstance(fact, ol.GetResource):
            self._update(fact, lambda r: r.request == "Get" and r.aet == fact.aet,
                         lambda r: replace(r, resources=(*r.resources, fact.resource)))
        elif isinstance(fact, ol.UnknownDestination):
            self._update(fact, lambda r: r.request == "Move" and r.destination == fact.destination,
                         lambda r: replace(r, outcome="failure", reason="unknown-destination"))
        elif isinstance(fact, ol.HandlerFailed):
            self._update(fact, lambda r: r.request == fact.request,
                         lambda r: r if r.outcome != "success" else replace(
                             r, outcome="failure", reason="handler-failed"))

    def _update(self, fact: ol.Fact, fits: Callable[[DimseRequest], bool],
                change: Callable[[DimseRequest], DimseRequest], *, oldest: bool = False) -> None:
        """Change the newest (or oldest) open request of the fact's thread that fits."""
        order = range(len(self.open)) if oldest else range(len(self.open) - 1, -1, -1)
        for index in order:
            request = self.open[index]
            if _same_thread(request, fact) and fits(request):
                self.open[index] = change(request)
                return

    def settle(self, horizon: datetime) -> list[DimseRequest]:
        """The requests complete by ``horizon`` (see the module) and every refused
        association, in log order; they leave :attr:`open`."""
        done = [r for r in self.open if _settles_at(r) <= horizon]
        self.open = [r for r in self.open if _settles_at(r) > horizon]
        out = sorted([*self._settled, *done], key=lambda r: r.at)
        self._settled = []
        return out
