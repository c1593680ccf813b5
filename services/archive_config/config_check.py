"""Check a configuration before Orthanc starts: ``python -m archive_config.config_check PATH``.

Orthanc reports a JSON syntax error without its line, and merges a folder of files only if no
top-level key appears twice. This check runs the same rules as the plugin's start-up, plus those,
and points at the file, line and key, so ``scripts/serve`` can stop before Orthanc starts.
``${VAR}`` placeholders are expanded from the environment as Orthanc does.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import jsonc
from .errors import ConfigError
from .settings import ArchiveSettings, parse_settings

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: Any, env: dict[str, str]) -> Any:
    """Replace ``${VAR}`` in every string, recursively (an unset variable becomes '')."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: env.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Configuration:
    """A whole configuration folder: Orthanc's merged keys (expanded) and our parsed section."""

    path: Path
    orthanc: Mapping[str, Any]
    archive: ArchiveSettings
    section_file: str


def load(config_path: Path, env: Mapping[str, str] | None = None) -> Configuration:
    """Load, merge, expand ``${VAR}`` and validate, as Orthanc and the plugin will."""
    merged, section_file = merge_files(config_path)
    expanded = expand(merged, dict(os.environ if env is None else env))
    settings = parse_settings(expanded, section_file)
    return Configuration(config_path, expanded, settings, section_file)


def check(config_path: Path, env: dict[str, str]) -> ArchiveSettings:
    """Load, merge and validate; raise ConfigError or ValueError with the file named."""
    return load(config_path, env).archive


def merge_files(config_path: Path) -> tuple[dict[str, Any], str]:
    """Every file of the folder merged (a key defined twice is an error) and our section's file."""
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    files = jsonc.config_files(config_path)
    if not files:
        raise ValueError(f"{config_path}: no configuration files found")
    section_file: str | None = None
    for path in files:
        data = jsonc.load_file(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a JSON object")
        for key, value in data.items():
            if key in merged:
                raise ConfigError(key, f"defined twice, also in {origin[key]}", str(path))
            merged[key] = value
            origin[key] = path
        if "Archive" in data:
            section_file = str(path)
    return merged, section_file or str(config_path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m archive_config.config_check CONFIG_FILE_OR_FOLDER", file=sys.stderr)
        return 2
    try:
        settings = check(Path(args[0]), dict(os.environ))
    except (ConfigError, ValueError, OSError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    print(f"configuration ok: tenant={settings.tenant} role={settings.role}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
