"""Start-up: read the configuration, validate it, register the enabled features.

Called by the entry script with Orthanc's SDK module; nothing here runs at import time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .adapters.orthanc_host import OrthancHost
from .adapters.orthanc_logging import install as install_logging
from .errors import ConfigError
from .features import Feature, register_all
from .health import HealthFeature
from .jsonc import find_section_file
from .settings import SECTION, ArchiveSettings, parse_settings


def all_features() -> list[Feature]:
    """The table of features, in registration order."""
    from .qido import QidoFeature
    from .viewer import ViewerFeature

    return [HealthFeature(), QidoFeature(), ViewerFeature()]


def load_settings(sdk: Any) -> ArchiveSettings:
    configuration = json.loads(sdk.GetConfiguration())
    source = _section_source(sdk)
    return parse_settings(configuration, source)


def _section_source(sdk: Any) -> str | None:
    """Name the file that defines our section, so an error points at what to edit."""
    config_path = _config_path(sdk)
    if config_path is None:
        return None
    found = find_section_file(config_path, SECTION)
    return str(found if found else config_path)


def _config_path(sdk: Any) -> Path | None:
    """The file or folder given to Orthanc on its command line (its one non-option argument)."""
    count = int(sdk.GetCommandLineArgumentsCount())
    args = [sdk.GetCommandLineArgument(i) for i in range(count)]
    paths = [a for a in args if not a.startswith("-")]
    return Path(paths[-1]).resolve() if paths else None


def start(sdk: Any, features: Sequence[Feature] | None = None) -> list[str]:
    """Validate settings and register features; a bad configuration raises ConfigError."""
    log = install_logging(sdk)
    try:
        settings = load_settings(sdk)
    except ConfigError as exc:
        sdk.LogError(f"regional-archive: invalid configuration: {exc}")
        raise
    Path(settings.state_directory).mkdir(parents=True, exist_ok=True)
    names = register_all(features or all_features(), settings, OrthancHost(sdk), log)
    log.warning(
        "regional-archive %s started: tenant=%s role=%s features=%s",
        __version__, settings.tenant, settings.role, ",".join(names),
    )
    return names


__all__ = ["start", "load_settings", "all_features"]
