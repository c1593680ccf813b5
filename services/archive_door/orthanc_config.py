"""Orthanc's configuration as the door needs it: the user's files, expanded, plus what we enforce.

Every file of the configuration folder is written to ``DATA/run/orthanc/`` with its ``${VAR}``
placeholders expanded (the services read the same files). Then, in the file that defines each
key (Orthanc refuses a top-level key defined in two files), the launcher enforces:

- ``RemoteAccessAllowed: false``: Orthanc's HTTP port answers loopback only; the world reaches
  the archive through nginx.
- ``AuthenticationEnabled: true`` with the internal credential in ``RegisteredUsers`` (merged
  with the users the configuration lists): even on loopback, a local process without the
  credential cannot use Orthanc's administrative REST.
- ``HttpCompressionEnabled: false``: nginx compresses JSON; pixel data must never be gzipped
  (measured: a frame takes 40 ms gzipped against 3.5 ms plain).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archive_config import jsonc
from archive_config.config_check import expand

from .credential import Credential

#: Keys the door sets whatever the configuration says.
ENFORCED: Mapping[str, Any] = {
    "RemoteAccessAllowed": False,
    "AuthenticationEnabled": True,
    "HttpCompressionEnabled": False,
}


def render(source: Path, env: Mapping[str, str], credential: Credential) -> dict[str, dict[str, Any]]:
    """File name → the content to write, for every file of the folder ``source``."""
    files: dict[str, dict[str, Any]] = {}
    for path in jsonc.config_files(source):
        data = jsonc.load_file(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a JSON object")
        files[path.name] = expand(data, dict(env))
    if not files:
        raise ValueError(f"{source}: no configuration files found")

    def home_of(key: str) -> dict[str, Any]:
        """The file that defines ``key``; if none does, the one with Orthanc's HttpPort."""
        for wanted in (key, "HttpPort"):
            for content in files.values():
                if wanted in content:
                    return content
        return next(iter(files.values()))

    for key, value in ENFORCED.items():
        home_of(key)[key] = value
    users_file = home_of("RegisteredUsers")
    users = users_file.get("RegisteredUsers") or {}
    if not isinstance(users, dict):
        raise ValueError("RegisteredUsers must be an object of user name → password")
    users_file["RegisteredUsers"] = {**users, credential.username: credential.password}
    return files


def write(target: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the rendered files (mode 0600: they hold the internal credential)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = target / name
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        path.chmod(0o600)
