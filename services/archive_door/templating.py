"""``{{ name }}`` placeholders in the packaged templates (nginx uses ``$`` and ``{}`` itself).

A placeholder alone on its line takes that line's indentation for every line of its value, so
generated blocks read as if written by hand. A placeholder without a value is an error, never
silently empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_ALONE = re.compile(r"^([ \t]*)\{\{\s*([a-z_]+)\s*\}\}[ \t]*$", re.M)


def template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def render(text: str, values: Mapping[str, str]) -> str:
    def block(match: re.Match[str]) -> str:
        indent, key = match.group(1), match.group(2)
        value = values[key].rstrip("\n")
        return "\n".join((indent + line) if line else "" for line in value.split("\n"))

    text = _ALONE.sub(block, text)
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join((prefix + line) if line else "" for line in text.rstrip("\n").split("\n"))
