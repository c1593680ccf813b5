"""The admin console's dependencies stay pinned, from the npm registry, and buildable on Node 18.

A fresh machine has only Debian bookworm's nodejs (18.20.4) and npm (9.2). ``console/.npmrc`` sets
``engine-strict``, so a single locked package whose ``engines`` refuses that Node would stop
``scripts/install-console`` there; these checks catch it when the lockfile changes, on any Node.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "console"
BOOKWORM_NODE = (18, 20, 4)
REGISTRY = "https://registry.npmjs.org/"
EXACT = re.compile(r"^\d+\.\d+\.\d+$")

Version = tuple[int, int, int]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONSOLE / name).read_text(encoding="utf-8"))
    return data


# --- a small reader of npm's semver ranges (https://github.com/npm/node-semver#ranges) -----------


def _partial(text: str) -> tuple[list[int], int]:
    """'18', '18.2', '18.x', '18.2.1' → (numbers given, how many); '*' or 'x' → ([], 0)."""
    parts = text.lstrip("v").split("-")[0].split(".")
    numbers: list[int] = []
    for part in parts:
        if part in ("x", "X", "*", ""):
            break
        if not part.isdigit():
            raise ValueError(f"cannot read version {text!r}")
        numbers.append(int(part))
    return numbers, len(numbers)


def _floor(numbers: list[int]) -> Version:
    full = (numbers + [0, 0, 0])[:3]
    return full[0], full[1], full[2]


def _bump(numbers: list[int], position: int) -> Version:
    """The first version above the partial, bumping at ``position`` (0 major, 1 minor …)."""
    bumped = numbers[:position] + [numbers[position] + 1]
    return _floor(bumped)


def _comparator(token: str, version: Version) -> bool:
    match = re.fullmatch(r"(>=|<=|>|<|=|\^|~)?\s*(.+)", token)
    if not match:
        raise ValueError(f"cannot read comparator {token!r}")
    operator, rest = match.group(1) or "", match.group(2)
    numbers, given = _partial(rest)
    low = _floor(numbers)
    if operator == "":  # a partial is an x-range: 18 means >=18.0.0 <19.0.0
        return given == 0 or low <= version < _bump(numbers, min(given, 3) - 1)
    if operator == "=":
        return version == low
    if operator == ">=":
        return version >= low
    if operator == ">":
        return version >= _bump(numbers, given - 1) if given else False
    if operator == "<":
        return version < low
    if operator == "<=":
        return version < _bump(numbers, given - 1) if given else True
    if operator == "~":  # ~18.2 := >=18.2.0 <18.3.0; ~18 := >=18.0.0 <19.0.0
        return low <= version < _bump(numbers, min(max(given - 1, 0), 1))
    # ^: the left-most non-zero part may not change
    first = next((i for i, n in enumerate(numbers) if n != 0), min(given, 3) - 1)
    return low <= version < _bump(numbers, max(first, 0))


def satisfies(version: Version, spec: str) -> bool:
    """Whether ``version`` is in the npm range ``spec`` (no hyphen ranges: they raise)."""
    for alternative in spec.split("||"):
        tokens = re.findall(r"(?:>=|<=|>|<|=|\^|~)?\s*[^\s<>=^~]+", alternative.strip())
        if not tokens:
            return True  # '' is any version
        if " - " in alternative:
            raise ValueError(f"hyphen ranges are not read here: {spec!r}")
        if all(_comparator(token.strip(), version) for token in tokens):
            return True
    return False


@pytest.mark.parametrize(("spec", "version", "expected"), [
    (">=18", (18, 20, 4), True), (">= 22", (18, 20, 4), False), (">=20.19.0", (18, 20, 4), False),
    ("^18.0.0 || >=20.0.0", (18, 20, 4), True),
    ("^18.0.0 || ^20.0.0 || >=22.0.0", (21, 0, 0), False),
    ("^20.19.0 || >=22.12.0", (18, 20, 4), False), ("^10 || ^12 || >=14", (18, 20, 4), True),
    ("^8.16.0 || ^10.6.0 || >=11.0.0", (18, 20, 4), True), ("18.x", (18, 20, 4), True),
    ("18", (19, 0, 0), False), ("~18.20", (18, 21, 0), False), (">=14.17", (18, 20, 4), True),
    ("<18.19", (18, 20, 4), False), ("^0.2.3", (0, 3, 0), False), ("*", (1, 2, 3), True),
    (">=16 <18", (18, 20, 4), False),
])
def test_the_range_reader(spec: str, version: Version, expected: bool) -> None:
    assert satisfies(version, spec) is expected


# --- the console's package files --------------------------------------------------------------


def test_dependencies_are_pinned_exactly() -> None:
    package = _load("package.json")
    pins = {**package["dependencies"], **package["devDependencies"]}
    expected = {"vue", "vue-router", "vue-i18n", "element-plus", "vite", "@vitejs/plugin-vue"}
    assert expected <= set(pins)
    loose = {name: spec for name, spec in pins.items() if not EXACT.match(spec)}
    assert not loose, f"pin exact versions in console/package.json: {loose}"


def test_the_lockfile_matches_package_json() -> None:
    package, lock = _load("package.json"), _load("package-lock.json")
    assert lock["lockfileVersion"] == 3  # read by npm 9 (bookworm) and later
    root = lock["packages"][""]
    assert root.get("dependencies", {}) == package["dependencies"]
    assert root.get("devDependencies", {}) == package["devDependencies"]
    pins = {**package["dependencies"], **package["devDependencies"]}
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name


def test_every_package_comes_from_the_npm_registry() -> None:
    for path, entry in _load("package-lock.json")["packages"].items():
        if not path:
            continue
        assert path.startswith("node_modules/") and not entry.get("link"), path
        resolved = entry.get("resolved")
        assert resolved is None or resolved.startswith(REGISTRY), (path, resolved)
        assert EXACT.match(entry["version"].split("-")[0]), (path, entry["version"])
        assert entry.get("integrity", "sha512-").startswith("sha512-"), path


def test_every_package_accepts_bookworms_node() -> None:
    refused = {}
    for path, entry in _load("package-lock.json")["packages"].items():
        engines = entry.get("engines")
        spec = engines.get("node") if isinstance(engines, dict) else None  # old packages: a list
        if path and spec and not satisfies(BOOKWORM_NODE, spec):
            refused[path.removeprefix("node_modules/")] = f"{entry['version']}: node {spec}"
    assert not refused, f"these need a newer Node than Debian bookworm's 18.20.4: {refused}"
    assert satisfies(BOOKWORM_NODE, _load("package.json")["engines"]["node"])


def test_engine_strict_is_on() -> None:
    settings = (CONSOLE / ".npmrc").read_text(encoding="utf-8").split("\n")
    assert "engine-strict=true" in settings
