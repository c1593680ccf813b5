"""The ports one archive listens on must differ; a clash is a configuration error naming both keys.

Caught before anything starts: otherwise nginx or Orthanc would fail to bind under supervisord
and be restarted in a loop, with the reason buried in a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archive_config.errors import ConfigError
from archive_config.settings import ArchiveSettings


def listening_ports(orthanc: Mapping[str, Any], settings: ArchiveSettings) -> dict[str, int]:
    """Dotted key → port, for every port the archive's processes open."""
    ports: dict[str, int] = {}
    for key in ("HttpPort", "DicomPort"):
        value = orthanc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            raise ConfigError(key, f"must be a TCP port number from 1 to 65535 (got {value!r})")
        ports[key] = value
    ports["Archive.Door.HttpPort"] = settings.door.http_port
    if settings.door.https.enabled:
        ports["Archive.Door.Https.Port"] = settings.door.https.port
    ports["Archive.Api.Port"] = settings.api.port
    return ports


def check_ports(orthanc: Mapping[str, Any], settings: ArchiveSettings, source: str | None = None) -> dict[str, int]:
    """:func:`listening_ports`, refusing two keys with the same port."""
    ports = listening_ports(orthanc, settings)
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            raise ConfigError(key, f"port {port} is also {seen[port]}; each port must differ", source)
        seen[port] = key
    return ports
