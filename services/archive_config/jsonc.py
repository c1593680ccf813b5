"""Reading Orthanc's configuration files, which are JSON with ``//`` and ``/* */`` comments.

Orthanc accepts comments in its configuration; Python's ``json`` does not. Comments are removed
outside string literals only, so URLs such as ``"http://host"`` survive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def strip_comments(text: str) -> str:
    """Return ``text`` with JSON comments replaced by spaces (line numbers are kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            block = text[i : end + 2]
            out.append("".join("\n" if ch == "\n" else " " for ch in block))
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def loads(text: str) -> Any:
    """Parse JSON that may contain Orthanc-style comments."""
    return json.loads(strip_comments(text))


def load_file(path: Path) -> Any:
    """Parse one configuration file; a syntax error names the file, line and column."""
    text = path.read_text(encoding="utf-8")
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc


def config_files(config_path: Path) -> list[Path]:
    """The files Orthanc reads for ``config_path``: the file itself, or a folder's ``*.json``."""
    if config_path.is_dir():
        return sorted(p for p in config_path.iterdir() if p.suffix == ".json" and p.is_file())
    return [config_path]


def find_section_file(config_path: Path, section: str) -> Path | None:
    """Which configuration file defines the top-level ``section`` (for error messages)."""
    for path in config_files(config_path):
        try:
            data = load_file(path)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and section in data:
            return path
    return None
