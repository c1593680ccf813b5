"""Features: each capability of the plugin registers itself from one table.

A feature is a small object with a ``name``, an ``is_enabled(settings)`` test and a
``register(context)`` that installs its routes and callbacks through the :class:`PluginHost`
protocol, so that the feature never imports ``orthanc`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .http import Handler
from .settings import ArchiveSettings


class PluginHost(Protocol):
    """What a feature may ask of Orthanc; implemented by ``adapters.orthanc_host``."""

    def add_route(self, methods: Sequence[str], uri_regex: str, handler: Handler) -> None: ...

    def rest_get_json(self, uri: str) -> Any:
        """GET on Orthanc's own REST API (in-process, no HTTP); ``None`` when it answers 404."""
        ...

    def rest_get_after_plugins(self, uri: str) -> bytes:
        """GET in-process through every plugin's routes; Orthanc errors become ArchiveErrors."""
        ...

    def dicomweb_root(self) -> str:
        """``DicomWeb.Root`` of Orthanc's configuration (``/dicom-web/`` by default)."""
        ...


@dataclass(frozen=True)
class PluginContext:
    settings: ArchiveSettings
    host: PluginHost
    log: logging.Logger
    enabled_features: tuple[str, ...]


class Feature(Protocol):
    @property
    def name(self) -> str: ...

    def is_enabled(self, settings: ArchiveSettings) -> bool: ...

    def register(self, context: PluginContext) -> None: ...


def enabled_features(features: Sequence[Feature], settings: ArchiveSettings) -> list[Feature]:
    return [f for f in features if f.is_enabled(settings)]


def register_all(
    features: Sequence[Feature], settings: ArchiveSettings, host: PluginHost, log: logging.Logger
) -> list[str]:
    """Register every enabled feature; return their names in registration order."""
    chosen = enabled_features(features, settings)
    names = tuple(f.name for f in chosen)
    context = PluginContext(settings=settings, host=host, log=log, enabled_features=names)
    for feature in chosen:
        feature.register(context)
        log.info("feature %s registered", feature.name)
    return list(names)
