#!/usr/bin/env python3
"""The archive image's Orthanc configuration: merged at build time, checked at start-up.

Build time (``merge``): the shipped ``config/*.json`` and the production overrides in
``docker/config/*.json`` are read (comments allowed), deep-merged in a fixed order (file names
sorted, overrides last) and written as one plain-JSON file, ``/etc/orthanc/archive.json``. It still
holds ``${VAR}`` placeholders and no secret. One file, because the ``orthancteam/orthanc``
entrypoint merges ``/etc/orthanc/*.json`` in directory order, which is not a defined order.

Start time (``check``): before handing over to the image's own entrypoint, which substitutes the
placeholders from the environment and starts Orthanc, the same substitution is done here on the
same text, so that a missing variable, a value that would break the JSON, a placeholder secret
left from ``.env.example``, or a bad ``Archive`` section stops the container with one line naming
the variable or key, instead of an Orthanc that starts half-configured.

Only the standard library and ``archive_config`` (pure modules) are used: this runs with the
image's system ``python3``, outside the plugin's virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

CONFIG_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "services"

# ${NAME}, ${NAME:-default} (unset or empty), ${NAME-default} (unset): the forms that both the
# image's envsubst and Orthanc's own configuration reader understand.
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}$\"\\]*))?\}")

# Values are pasted into JSON string literals as text, then read again by envsubst: a quote or a
# backslash would break the JSON, a '$' would be substituted a second time.
_UNSAFE = re.compile(r'["\\$\x00-\x1f]')

# Secrets in .env.example start with this; the container refuses to start with one of them.
EXAMPLE_SECRET_PREFIX = "change-me"


class RenderError(Exception):
    """The configuration cannot be rendered; the message names the variable or key."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    operator: str | None  # None, "-" or ":-"
    default: str | None

    def resolve(self, env: Mapping[str, str]) -> str | None:
        value = env.get(self.name)
        if self.operator == ":-" and not value:
            return self.default
        if self.operator == "-" and value is None:
            return self.default
        return value


def _project_module(name: str) -> ModuleType:
    """Import ``archive_config.<name>`` from the checkout (or /opt/archive) next to this file."""
    if str(CONFIG_PACKAGE_DIR) not in sys.path:
        sys.path.insert(0, str(CONFIG_PACKAGE_DIR))
    return __import__(f"archive_config.{name}", fromlist=[name])


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``: objects merge key by key, anything else (lists too) is replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_folder(folder: Path) -> dict[str, Any]:
    """Every ``*.json`` of ``folder`` in name order, merged."""
    jsonc = _project_module("jsonc")
    merged: dict[str, Any] = {}
    paths = jsonc.config_files(folder)
    if not paths:
        raise RenderError(f"{folder}: no *.json configuration files")
    for path in paths:
        data = jsonc.load_file(path)
        if not isinstance(data, dict):
            raise RenderError(f"{path}: the top level must be a JSON object")
        merged = deep_merge(merged, data)
    return merged


def merge(base: Path, overrides: Path) -> dict[str, Any]:
    """The production configuration: ``base`` (config/) with ``overrides`` (docker/config/)."""
    return deep_merge(load_folder(base), load_folder(overrides))


def dumps(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def placeholders(text: str) -> list[Placeholder]:
    """The placeholders of ``text``; a ``$`` that is not part of one is an error."""
    stray = _PLACEHOLDER.sub("", text)
    if "$" in stray:
        at = stray.index("$")
        raise RenderError(
            f"stray '$' near {stray[max(0, at - 20):at + 20]!r}: only ${{NAME}}, ${{NAME:-default}}"
            " and ${NAME-default} placeholders may contain '$'"
        )
    return [Placeholder(m[1], m[2], m[3]) for m in _PLACEHOLDER.finditer(text)]


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Replace every placeholder with its value from ``env``, refusing unsafe or missing ones."""
    placeholders(text)  # reject stray '$' first

    def replace(match: re.Match[str]) -> str:
        ph = Placeholder(match[1], match[2], match[3])
        value = ph.resolve(env)
        if value is None:
            raise RenderError(f"environment variable {ph.name} is not set (used as {match[0]})")
        bad = _UNSAFE.search(value)
        if bad:
            raise RenderError(
                f"environment variable {ph.name} contains {bad[0]!r}, which cannot be placed in"
                " the JSON configuration (quotes, backslashes, '$' and control characters)"
            )
        return value

    return _PLACEHOLDER.sub(replace, text)


def render(text: str, env: Mapping[str, str]) -> dict[str, Any]:
    """What Orthanc will read: ``text`` with ``env`` substituted, parsed."""
    try:
        config = json.loads(substitute(text, env))
    except json.JSONDecodeError as exc:
        raise RenderError(f"the rendered configuration is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise RenderError("the rendered configuration must be a JSON object")
    return config


def example_secrets(text: str, env: Mapping[str, str]) -> list[str]:
    """Variables in ``text`` that still hold a ``change-me`` value from ``.env.example``."""
    names = {ph.name for ph in placeholders(text)}
    return sorted(n for n in names if env.get(n, "").startswith(EXAMPLE_SECRET_PREFIX))


def check(text: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Everything the container checks before Orthanc starts; returns the rendered config."""
    leftovers = example_secrets(text, env)
    if leftovers:
        raise RenderError(
            f"{', '.join(leftovers)} still hold the '{EXAMPLE_SECRET_PREFIX}…' value of"
            " docker/.env.example: set real values in docker/.env"
        )
    config = render(text, env)
    settings = _project_module("settings")
    errors = _project_module("errors")
    try:
        settings.parse_settings(config, "/etc/orthanc/archive.json (rendered)")
    except errors.ConfigError as exc:
        raise RenderError(str(exc)) from exc
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="build time: merge config/ and docker/config/ into one file")
    m.add_argument("--base", type=Path, required=True)
    m.add_argument("--overrides", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("check", help="start time: render with the environment and validate")
    c.add_argument("config", type=Path)
    c.add_argument("--out", type=Path, default=None,
                   help="also write the rendered configuration there (the launcher's input)")
    args = parser.parse_args(argv)
    try:
        if args.command == "merge":
            text = dumps(merge(args.base, args.overrides))
            placeholders(text)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
        else:
            rendered = check(args.config.read_text(encoding="utf-8"), os.environ)
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rendered, indent=2, ensure_ascii=False), encoding="utf-8")
                args.out.chmod(0o600)
    except (RenderError, OSError, ValueError) as exc:
        print(f"[archive] configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
