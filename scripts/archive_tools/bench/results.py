"""Benchmark results: metrics of both servers, their ratio, the requirement, tables, JSON.

A metric is measured on two servers run after run; each run gives one or more samples (one
images/s figure per ingest run, one latency per request). The reported value is a statistic of
the pooled samples (the median, or p95 for tail latency). The two sides are ours and vanilla
for most cases, door and direct for the door-overhead cases, secured and open for what
authentication costs (``sides``); the first is kept as ``ours``, the second as ``vanilla``,
whatever their names. The ratio is always first/second (ours/vanilla, door/direct,
secured/open); a ratio target (issue 6: ingest ≥ 0.95 of vanilla, the door ≤ 1.05 of direct,
QIDO through the API ≤ 1.2 of direct; issue 8: security on ≤ 1.05 of off) is checked against it;
``slowdown`` turns it the way a reader means it: above 1 our archive is worse, whether lower
(latency) or higher (throughput) is better. A verdict of ``slower`` means worse by more than
:data:`SLOWER_THAN` (10 %, the issue's threshold for profiling).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .stats import Statistic, statistic, summarize

SCHEMA: Final = "regional-archive-bench/1"
SLOWER_THAN: Final = 1.10


class Better(enum.StrEnum):
    LOWER = "lower"
    HIGHER = "higher"


@dataclass(frozen=True)
class Target:
    """A requirement's threshold, e.g. M19's first image archived in ≤ 0.2 s."""

    requirement: str
    op: Literal["<=", ">="]
    value: float

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def text(self, unit: str) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        return f"{sign} {self.value:.4g} {unit} ({self.requirement})".replace("  ", " ")


FIRST_IMAGE: Final = Target("M19", "<=", 0.2)
IMAGES_PER_S: Final = Target("M19", ">=", 500)
MB_PER_S: Final = Target("M19", ">=", 128)
VIEWER_FIRST_IMAGE: Final = Target("M13", "<=", 1.0)
#: Issue 6's ratios: ours/vanilla ingest rate, door/direct latency, API/direct QIDO latency.
INGEST_RATIO: Final = Target("issue 6", ">=", 0.95)
DOOR_RATIO: Final = Target("issue 6", "<=", 1.05)
DOOR_RATE_RATIO: Final = Target("issue 6", ">=", 1 / 1.05)
API_QIDO_RATIO: Final = Target("issue 6", "<=", 1.2)
#: Issue 8's: what authentication on costs against off (latency, throughput, viewer).
SECURITY_RATIO: Final = Target("issue 8", "<=", 1.05)
SECURITY_RATE_RATIO: Final = Target("issue 8", ">=", 1 / 1.05)


@dataclass(frozen=True)
class MetricSpec:
    """What is measured and how it is reduced; ``name`` is unique within a case."""

    name: str
    unit: str
    better: Better
    statistic: Statistic = "median"
    target: Target | None = None  # on the value of each side
    ratio_target: Target | None = None  # on the ratio first/second
    #: False when the two sides do not do the same work (the Chinese-name search against an
    #: ASCII one): the ratio is reported, but no verdict is drawn and nothing is rechecked.
    comparable: bool = True


@dataclass
class Samples:
    """One server's samples of one metric, grouped by run."""

    runs: list[list[float]] = field(default_factory=list)

    def add_run(self, values: Iterable[float]) -> None:
        run = [float(v) for v in values]
        if run:
            self.runs.append(run)

    @property
    def pooled(self) -> list[float]:
        return [v for run in self.runs for v in run]

    def value(self, which: Statistic) -> float | None:
        pooled = self.pooled
        return statistic(pooled, which) if pooled else None

    def per_run(self, which: Statistic) -> list[float]:
        return [statistic(run, which) for run in self.runs]


Verdict = Literal["slower", "faster", "same", "n/a"]


@dataclass
class MetricResult:
    scenario: str
    case: str
    label: str
    spec: MetricSpec
    ours: Samples = field(default_factory=Samples)
    vanilla: Samples | None = field(default_factory=Samples)
    notes: list[str] = field(default_factory=list)
    rechecked_runs: int = 0
    sides: tuple[str, str] = ("ours", "vanilla")

    @property
    def key(self) -> str:
        return f"{self.case}:{self.spec.name}"

    @property
    def ours_value(self) -> float | None:
        return self.ours.value(self.spec.statistic)

    @property
    def vanilla_value(self) -> float | None:
        return self.vanilla.value(self.spec.statistic) if self.vanilla is not None else None

    @property
    def ratio(self) -> float | None:
        return ratio(self.ours_value, self.vanilla_value)

    @property
    def slowdown(self) -> float | None:
        if not self.spec.comparable:
            return None
        return slowdown(self.ours_value, self.vanilla_value, self.spec.better)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.slowdown)

    @property
    def ratio_met(self) -> bool | None:
        """Whether the ratio meets the spec's ratio target (None: no target or no ratio)."""
        target, value = self.spec.ratio_target, self.ratio
        return None if target is None or value is None else target.met(value)

    def paired_worse(self) -> tuple[int, int]:
        """In how many paired runs ours was worse than vanilla, and how many pairs there are."""
        if self.vanilla is None:
            return 0, 0
        pairs = list(zip(self.ours.per_run(self.spec.statistic),
                         self.vanilla.per_run(self.spec.statistic)))
        worse = sum(1 for o, v in pairs
                    if (o > v if self.spec.better is Better.LOWER else o < v))
        return worse, len(pairs)


def ratio(ours: float | None, vanilla: float | None) -> float | None:
    """ours/vanilla, or None when either is missing or vanilla is 0."""
    if ours is None or vanilla is None or vanilla == 0:
        return None
    return ours / vanilla


def slowdown(ours: float | None, vanilla: float | None, better: Better) -> float | None:
    """How many times worse ours is than vanilla (< 1: better)."""
    if ours is None or vanilla is None:
        return None
    if better is Better.LOWER:
        return ours / vanilla if vanilla > 0 else None
    return vanilla / ours if ours > 0 else (math.inf if vanilla > 0 else None)


def verdict(value: float | None, threshold: float = SLOWER_THAN) -> Verdict:
    if value is None:
        return "n/a"
    if value > threshold:
        return "slower"
    if value < 1 / threshold:
        return "faster"
    return "same"


# --- formatting ---------------------------------------------------------------------------


def format_number(value: float | None) -> str:
    """Three significant figures without exponent: 0.153, 4.27, 31.2, 312, 3120."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    magnitude = abs(value)
    if magnitude >= 100 or value == 0:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pass_text(passed: bool | None) -> str:
    return "" if passed is None else ("pass" if passed else "FAIL")


def verdict_text(entry: Mapping[str, Any]) -> str:
    """"slower 15%", "faster 30%", "≈", or why there is no comparison."""
    if entry["vanilla"] is None:
        return f"{sides_of(entry)[0]} only"
    value = entry["slowdown"]
    if value is None or entry["verdict"] == "n/a":
        return "n/a"
    if entry["verdict"] == "same":
        return "≈"
    if entry["verdict"] == "slower":
        return f"slower {(value - 1) * 100:.0f}%"
    return f"faster {(1 - value) * 100:.0f}%"


def target_text(entry: Mapping[str, Any]) -> str:
    target = entry["target"]
    if target is None:
        return ""
    return Target(target["requirement"], target["op"], target["value"]).text(entry["unit"])


def ratio_target_text(entry: Mapping[str, Any]) -> str:
    target = entry.get("ratio_target")
    if target is None:
        return ""
    return Target(target["requirement"], target["op"], target["value"]).text("")


def sides_of(entry: Mapping[str, Any]) -> tuple[str, str]:
    """The entry's two sides (files written before door/direct cases have none: ours, vanilla)."""
    sides = entry.get("sides") or ("ours", "vanilla")
    return str(sides[0]), str(sides[1])


def _value(side: Mapping[str, Any] | None) -> float | None:
    return None if side is None else float(side["value"])


HEADERS: Final = ("scenario", "case", "metric", "unit", "ours", "vanilla", "ours/vanilla",
                  "verdict", "target", "ours ok", "vanilla ok", "ratio target", "ratio ok")


def headers(sides: tuple[str, str] = ("ours", "vanilla"), scenario: bool = True) -> list[str]:
    """:data:`HEADERS` named after the two sides compared (door, direct …)."""
    a, b = sides
    names = {"ours": a, "vanilla": b, "ours/vanilla": f"{a}/{b}", "ours ok": f"{a} ok",
             "vanilla ok": f"{b} ok"}
    out = [names.get(h, h) for h in HEADERS]
    return out if scenario else out[1:]


def table_rows(entries: Sequence[Mapping[str, Any]], scenario: bool = True) -> list[list[str]]:
    """One row per result entry of the JSON document (see :func:`metric_entry`)."""
    rows = []
    for e in entries:
        row = [e["scenario"]] if scenario else []
        row += [e["label"], e["metric"], e["unit"], format_number(_value(e["ours"])),
                format_number(_value(e["vanilla"])), format_ratio(e["ratio"]), verdict_text(e),
                target_text(e), _pass_text(e["pass"]["ours"]), _pass_text(e["pass"]["vanilla"]),
                ratio_target_text(e), _pass_text(e["pass"].get("ratio"))]
        rows.append(row)
    return rows


def _is_numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "-—∞")


def format_text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned with spaces; numbers right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, width in zip(cells, widths):
            out.append(cell.rjust(width) if _is_numeric(cell) else cell.ljust(width))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)]) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                          align_numbers: bool = True) -> str:
    """A Markdown table; columns whose first cell is a number are right-aligned."""
    align = ["---:" if align_numbers and rows and _is_numeric(rows[0][i]) else "---"
             for i in range(len(headers))]
    out = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def results_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """The table printed on stdout (columns named ours/vanilla; a door-overhead row's sides
    are door/direct, as its scenario says)."""
    return format_text_table(HEADERS, table_rows(entries))


# --- the JSON document --------------------------------------------------------------------


def _side(samples: Samples | None, which: Statistic) -> dict[str, Any] | None:
    if samples is None or not samples.pooled:
        return None
    pooled = samples.pooled
    entry: dict[str, Any] = {
        "value": round(statistic(pooled, which), 6),
        "runs": len(samples.runs),
        "per_run": [round(v, 6) for v in samples.per_run(which)],
        "summary": summarize(pooled).as_dict(),
    }
    if len(pooled) <= 50:
        entry["samples"] = [round(v, 6) for v in pooled]
    return entry


def _rounded(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return round(value, 4)


def metric_entry(m: MetricResult) -> dict[str, Any]:
    spec = m.spec
    worse, pairs = m.paired_worse()
    return {
        "scenario": m.scenario,
        "case": m.case,
        "label": m.label,
        "metric": spec.name,
        "unit": spec.unit,
        "better": spec.better.value,
        "statistic": spec.statistic,
        "ours": _side(m.ours, spec.statistic),
        "vanilla": _side(m.vanilla, spec.statistic),
        "ratio": _rounded(m.ratio),
        "slowdown": _rounded(m.slowdown),
        "verdict": m.verdict,
        "paired_runs_ours_worse": [worse, pairs],
        "target": None if spec.target is None else {
            "requirement": spec.target.requirement, "op": spec.target.op,
            "value": spec.target.value, "unit": spec.unit},
        "pass": {
            "ours": None if spec.target is None or m.ours_value is None
            else spec.target.met(m.ours_value),
            "vanilla": None if spec.target is None or m.vanilla_value is None
            else spec.target.met(m.vanilla_value),
            "ratio": m.ratio_met,
        },
        "rechecked_runs": m.rechecked_runs,
        "notes": list(m.notes),
        "sides": list(m.sides),
        "ratio_target": None if spec.ratio_target is None else {
            "requirement": spec.ratio_target.requirement, "op": spec.ratio_target.op,
            "value": spec.ratio_target.value},
    }


def build_document(*, started: str, finished: str, duration_s: float, mode: str,
                   argv: Sequence[str], machine: Mapping[str, Any],
                   software: Mapping[str, Any], settings: Mapping[str, Any],
                   data: Mapping[str, Any], metrics: Sequence[MetricResult],
                   profiles: Sequence[Mapping[str, Any]], background: Mapping[str, Any],
                   notes: Sequence[str], errors: Sequence[str]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "started": started,
        "finished": finished,
        "duration_s": round(duration_s, 1),
        "mode": mode,
        "argv": list(argv),
        "machine": dict(machine),
        "software": dict(software),
        "settings": dict(settings),
        "data": dict(data),
        "background": dict(background),
        "results": [metric_entry(m) for m in metrics],
        "profiles": [dict(p) for p in profiles],
        "notes": list(notes),
        "errors": list(errors),
    }


# A small structural schema: key → expected type(s), or a nested schema for objects.
_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_SIDE: Final[dict[str, Any]] = {"value": _NUMBER, "runs": int, "per_run": list, "summary": dict}
_RESULT: Final[dict[str, Any]] = {
    "scenario": str, "case": str, "label": str, "metric": str, "unit": str, "better": str,
    "statistic": str, "ours": (dict, type(None)), "vanilla": (dict, type(None)),
    "ratio": _OPTIONAL_NUMBER, "slowdown": _OPTIONAL_NUMBER, "verdict": str,
    "paired_runs_ours_worse": list, "target": (dict, type(None)), "pass": dict,
    "rechecked_runs": int, "notes": list,
}
_DOCUMENT: Final[dict[str, Any]] = {
    "schema": str, "started": str, "finished": str, "duration_s": _NUMBER, "mode": str,
    "argv": list, "machine": dict, "software": dict, "settings": dict, "data": dict,
    "background": dict, "results": list, "profiles": list, "notes": list, "errors": list,
}
_MACHINE_KEYS: Final = ("cpu_model", "logical_cpus", "memory_gib", "kernel", "os", "disk")


def _check(obj: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    for key, kind in schema.items():
        if key not in obj:
            problems.append(f"{where}: missing {key!r}")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            problems.append(f"{where}.{key}: {type(obj[key]).__name__} is not {kind}")
    return problems


def validate_document(doc: Any) -> list[str]:
    """What is wrong with a results document (empty when it follows :data:`SCHEMA`)."""
    if not isinstance(doc, dict):
        return ["document: not a JSON object"]
    problems = _check(doc, _DOCUMENT, "document")
    if problems:
        return problems
    if doc["schema"] != SCHEMA:
        problems.append(f"document.schema: {doc['schema']!r} is not {SCHEMA!r}")
    if not isinstance(doc.get("analysis", ""), str):
        problems.append("document.analysis: not a string")
    if doc["mode"] not in ("full", "quick"):
        problems.append(f"document.mode: {doc['mode']!r} is not 'full' or 'quick'")
    problems += [f"document.machine: missing {k!r}" for k in _MACHINE_KEYS
                 if k not in doc["machine"]]
    for i, entry in enumerate(doc["results"]):
        where = f"results[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        found = _check(entry, _RESULT, where)
        problems += found
        if found:
            continue
        if entry["better"] not in {b.value for b in Better}:
            problems.append(f"{where}.better: {entry['better']!r}")
        if entry["verdict"] not in ("slower", "faster", "same", "n/a"):
            problems.append(f"{where}.verdict: {entry['verdict']!r}")
        for side in ("ours", "vanilla"):
            if entry[side] is not None:
                problems += _check(entry[side], _SIDE, f"{where}.{side}")
        if entry["ours"] is None:
            problems.append(f"{where}.ours: our archive has no value")
        sides = entry.get("sides", ["ours", "vanilla"])
        if not (isinstance(sides, list) and len(sides) == 2
                and all(isinstance(x, str) for x in sides)):
            problems.append(f"{where}.sides: {sides!r} is not two names")
        if not isinstance(entry.get("ratio_target"), (dict, type(None))):
            problems.append(f"{where}.ratio_target: not an object")
    return problems
