"""Order statistics of benchmark samples: medians and percentiles, nothing fancier.

Percentiles interpolate linearly between the two nearest ranks (the "linear" method of
Hyndman & Fan type 7, numpy's default), so that p50 is the median and p0/p100 the extremes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal

Statistic = Literal["median", "p90", "p95", "p99", "mean", "min", "max"]

STATISTICS: Final[tuple[Statistic, ...]] = ("median", "p90", "p95", "p99", "mean", "min", "max")


class NoSamples(ValueError):
    """A statistic of nothing was asked for."""


def _clean(values: Iterable[float]) -> list[float]:
    out = sorted(float(v) for v in values)
    if not out:
        raise NoSamples("no samples")
    if any(math.isnan(v) for v in out):
        raise ValueError("samples hold NaN")
    return out


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0 ≤ q ≤ 100) of ``values``, linearly interpolated."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    data = _clean(values)
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def statistic(values: Iterable[float], which: Statistic) -> float:
    """One named statistic of ``values``."""
    data = _clean(values)
    if which == "median":
        return percentile(data, 50)
    if which in ("p90", "p95", "p99"):
        return percentile(data, float(which[1:]))
    if which == "mean":
        return math.fsum(data) / len(data)
    if which == "min":
        return data[0]
    if which == "max":
        return data[-1]
    raise ValueError(f"unknown statistic {which!r}")


@dataclass(frozen=True)
class Summary:
    """What the results file keeps of a set of samples."""

    n: int
    min: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float

    def as_dict(self, digits: int = 6) -> dict[str, float | int]:
        return {k: (round(v, digits) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def summarize(values: Sequence[float]) -> Summary:
    data = _clean(values)
    return Summary(n=len(data), min=data[0], median=percentile(data, 50),
                   p90=percentile(data, 90), p95=percentile(data, 95), p99=percentile(data, 99),
                   max=data[-1], mean=math.fsum(data) / len(data))
