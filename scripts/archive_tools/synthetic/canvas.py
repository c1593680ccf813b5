"""Soft-edged shapes painted in patient millimetres: what the modality modules draw with.

Each shape is evaluated only inside its bounding box, which is what keeps a full CT volume fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]


def smoothstep(lo: float, hi: float, t: float) -> float:
    u = min(max((t - lo) / (hi - lo), 0.0), 1.0)
    return u * u * (3 - 2 * u)


def bump(lo: float, hi: float, t: float) -> float:
    """0 outside (lo, hi), rising to 1 in the middle: how big an organ is at level ``t``."""
    if not lo < t < hi:
        return 0.0
    return math.sin(math.pi * (t - lo) / (hi - lo))


def grow(lo: float, hi: float, t: float) -> float:
    """0 before ``lo``, growing like the section of a dome to 1 at ``hi``."""
    return math.sqrt(min(max((t - lo) / (hi - lo), 0.0), 1.0))


Box = tuple[slice, slice]
Ripple = tuple[float, int, float]  # amplitude (fraction of the radius), lobes, phase


class Canvas:
    """A float image addressed in millimetres, onto which soft-edged shapes are painted.

    ``x`` and ``y`` are the ascending coordinates of the column and row centres. Each shape is
    computed only inside its bounding box, which is what keeps a full CT volume fast.
    """

    def __init__(self, x: F32, y: F32, fill: float) -> None:
        self.x = x
        self.y = y
        self.image: F32 = np.full((y.size, x.size), fill, np.float32)

    def box(self, x0: float, x1: float, y0: float, y1: float) -> Box | None:
        c0, c1 = np.searchsorted(self.x, [x0, x1])
        r0, r1 = np.searchsorted(self.y, [y0, y1])
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(int(r0), int(r1)), slice(int(c0), int(c1))

    def radius(self, cx: float, cy: float, a: float, b: float, *, angle: float = 0.0,
               ripples: Sequence[Ripple] = ()) -> tuple[Box, F32] | None:
        """Normalised elliptical radius (1 on the outline) inside the shape's bounding box."""
        if a <= 0.05 or b <= 0.05:
            return None
        reach = max(a, b) * (1 + sum(abs(r[0]) for r in ripples)) + 2.0
        box = self.box(cx - reach, cx + reach, cy - reach, cy + reach)
        if box is None:
            return None
        u = self.x[box[1]][None, :] - np.float32(cx)
        v = self.y[box[0]][:, None] - np.float32(cy)
        if angle:
            c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
            u, v = u * c + v * s, v * c - u * s
        r: F32 = np.sqrt((u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2)
        if ripples:
            theta = np.arctan2(v / np.float32(b), u / np.float32(a))
            outline = np.ones_like(r)
            for amplitude, lobes, phase in ripples:
                outline += np.float32(amplitude) * np.sin(lobes * theta + np.float32(phase))
            r /= outline
        return box, r

    def ellipse(self, value: float, cx: float, cy: float, a: float, b: float, *,
                angle: float = 0.0, edge: float = 0.7, ripples: Sequence[Ripple] = (),
                below: float | None = None) -> None:
        """Paint a filled ellipse of ``value``, blended over ``edge`` mm at its outline.

        With ``below``, only pixels currently darker than it are painted (vessels in lung).
        """
        hit = self.radius(cx, cy, a, b, angle=angle, ripples=ripples)
        if hit is None:
            return
        box, r = hit
        alpha = np.clip((1 - r) * np.float32(min(a, b) / edge) + np.float32(0.5), 0, 1)
        sub = self.image[box]
        if below is not None:
            alpha *= sub < below
        sub += alpha * (np.float32(value) - sub)

    def chord(self, weight: float, cx: float, cy: float, a: float, b: float, *,
              angle: float = 0.0) -> None:
        """Add the projected thickness of an ellipsoid (radiography is a sum along the ray)."""
        hit = self.radius(cx, cy, a, b, angle=angle)
        if hit is None:
            return
        box, r = hit
        self.image[box] += np.float32(weight) * np.sqrt(np.clip(1 - r * r, 0, None))

    def rect(self, value: float, x0: float, x1: float, y0: float, y1: float) -> None:
        box = self.box(x0, x1, y0, y1)
        if box is not None:
            self.image[box] = value


def axis(count: int, spacing: float) -> F32:
    """Pixel-centre coordinates, centred on the isocentre."""
    return ((np.arange(count, dtype=np.float32) - (count - 1) / 2) * spacing).astype(np.float32)

