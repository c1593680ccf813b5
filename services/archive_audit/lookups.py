"""A lookup the log tailers make in Orthanc, asked once per key within one run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Found = TypeVar("Found")


def cached(resolve: Callable[[str], Found | None]) -> Callable[[str], Found | None]:
    """``resolve`` asked at most once per key (also when it answers None)."""
    seen: dict[str, Found | None] = {}

    def lookup(key: str) -> Found | None:
        if key not in seen:
            seen[key] = resolve(key)
        return seen[key]

    return lookup
