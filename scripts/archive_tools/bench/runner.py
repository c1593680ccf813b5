"""Alternate cases between the two servers, collect samples, recheck suspect ratios.

A *case* is one thing measured the same way on two servers (``storescu`` with 4 associations
of CT instances; series metadata with 4 clients …). Its ``sides`` name them: ours and vanilla for
most cases, door and direct for what the door and the API service cost (:mod:`.servers`). The
first side is the one judged (it is stored as the result's ``ours``), the second its baseline.
Its ``run(server)`` does it once and returns samples per metric. Repetitions alternate the order,
A B, B A, A B …, so that a slow drift of the machine (another job starting, the page cache
filling) weighs on both servers alike.

A ratio that says our archive is more than 10 % worse may be noise on this machine; the runner
measures such cases again (more A/B pairs) before anyone profiles them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .results import MetricResult, MetricSpec, Samples
from .servers import OURS, VANILLA, Server

Sides = tuple[str, str]
OURS_VANILLA: Sides = (OURS, VANILLA)

log = logging.getLogger(__name__)


class CaseFailed(RuntimeError):
    """The case could not be measured on a server (its samples would be meaningless)."""


class Case(Protocol):
    @property
    def scenario(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def specs(self) -> Sequence[MetricSpec]: ...

    @property
    def sides(self) -> Sides:
        """The two servers compared: the judged one first, its baseline second."""
        ...

    @property
    def repeatable(self) -> bool:
        """False when a run changes what the next would measure (it cannot be rechecked)."""
        ...

    @property
    def warmup(self) -> bool:
        """Run once on each server, unrecorded, before measuring (caches, lazy loading)."""
        ...

    def run(self, server: Server) -> Mapping[str, Sequence[float]]: ...


def order(rep: int, names: Sequence[str] = (OURS, VANILLA)) -> list[str]:
    """A B for even repetitions, B A for odd ones."""
    return list(names) if rep % 2 == 0 else list(reversed(names))


@dataclass
class Measured:
    case: Case
    results: list[MetricResult]


@dataclass
class Runner:
    servers: Mapping[str, Server]
    reps: int
    errors: list[str] = field(default_factory=list)
    measured: list[Measured] = field(default_factory=list)
    progress: Callable[[str], None] = log.info

    def _new_results(self, case: Case) -> list[MetricResult]:
        return [MetricResult(case.scenario, case.key, case.label, spec, sides=case.sides)
                for spec in case.specs]

    def _run_once(self, case: Case, name: str, results: Sequence[MetricResult],
                  failures: dict[str, list[str]]) -> None:
        server = self.servers[name]
        try:
            samples = case.run(server)
        except CaseFailed as error:
            failures.setdefault(name, []).append(str(error))
            log.warning("%s on %s: %s", case.key, name, error)
            return
        for result in results:
            values = samples.get(result.spec.name, ())
            side = result.ours if name == case.sides[0] else result.vanilla
            if side is not None:
                side.add_run(values)

    def measure(self, case: Case, reps: int | None = None) -> list[MetricResult]:
        """Measure ``case`` on both servers, ``reps`` times each; return its metrics."""
        reps = self.reps if reps is None else reps
        results = self._new_results(case)
        failures: dict[str, list[str]] = {}
        started = time.monotonic()
        if case.warmup:
            for name in order(0, case.sides):
                try:
                    case.run(self.servers[name])
                except CaseFailed as error:
                    log.warning("warm-up of %s on %s: %s", case.key, name, error)
        for rep in range(reps):
            for name in order(rep, case.sides):
                self._run_once(case, name, results, failures)
        self._settle(case, results, failures)
        self.progress(f"{case.key}: {time.monotonic() - started:.1f} s; " + ", ".join(
            f"{r.spec.name} {_fmt(r.ours_value)} vs {_fmt(r.vanilla_value)}" for r in results))
        self.measured.append(Measured(case, results))
        return results

    def _settle(self, case: Case, results: Sequence[MetricResult],
                failures: Mapping[str, Sequence[str]]) -> None:
        """Turn failures into notes: a baseline that never worked is left out; the judged side
        failing is an error."""
        for name, messages in failures.items():
            text = f"{name}: {len(messages)} failed run(s), first: {messages[0]}"
            if name == case.sides[0]:
                self.errors.append(f"{case.key}: {text}")
            for result in results:
                result.notes.append(text)
        for result in results:
            if result.vanilla is not None and not result.vanilla.runs:
                result.vanilla = None

    def recheck(self, extra_reps: int, budget_s: float, threshold: float) -> list[str]:
        """Measure again every repeatable case with a metric more than ``threshold`` worse.

        The worst first, until ``budget_s`` seconds are spent. Returns the case keys rechecked.
        """
        suspects = []
        for measured in self.measured:
            worst = max((r.slowdown or 0.0 for r in measured.results), default=0.0)
            if worst > threshold and measured.case.repeatable:
                suspects.append((worst, measured))
        suspects.sort(key=lambda s: -s[0])
        done: list[str] = []
        deadline = time.monotonic() + budget_s
        for worst, measured in suspects:
            if time.monotonic() > deadline:
                log.warning("recheck budget spent; %s not rechecked", measured.case.key)
                for result in measured.results:
                    if (result.slowdown or 0) > threshold:
                        result.notes.append("not rechecked (time budget)")
                continue
            self.progress(f"recheck {measured.case.key} (worst slowdown {worst:.2f})")
            failures: dict[str, list[str]] = {}
            for rep in range(extra_reps):
                for name in order(rep + 1, measured.case.sides):  # baseline first this time
                    self._run_once(measured.case, name, measured.results, failures)
            for result in measured.results:
                result.rechecked_runs += extra_reps
            self._settle(measured.case, measured.results, failures)
            done.append(measured.case.key)
        return done

    def results(self) -> list[MetricResult]:
        return [r for m in self.measured for r in m.results]

    def case(self, key: str) -> Case | None:
        for measured in self.measured:
            if measured.case.key == key:
                return measured.case
        return None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def samples_of(values: Sequence[float]) -> Samples:
    """A one-run :class:`Samples` (for tests and one-shot measurements)."""
    s = Samples()
    s.add_run(values)
    return s
