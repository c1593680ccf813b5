"""Start-up: settings, features, checks, callbacks, one log line.

Called once by the entry script with Orthanc's SDK module, during the plugin's initialization
(where the SDK refuses REST calls: "Plugin trying to call the database during its
initialization"). Anything raised here stops Orthanc, on purpose: a configuration error names
the key and the file (``archive_config.ConfigError``), a failed start-up check says what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from archive_config import ConfigError
from archive_config.jsonc import find_section_file
from archive_config.settings import SECTION, ArchiveSettings, parse_settings

from . import __version__
from .adapters.host import SdkAdapter
from .adapters.orthanc_logging import install as install_logging
from .adapters.sdk import OrthancSdk
from .contributions import Feature
from .errors import PluginError
from .features import build_features
from .runtime import Runtime, StartReport


def load_settings(adapter: SdkAdapter) -> ArchiveSettings:
    """Our section of the configuration Orthanc loaded, naming the file that holds it."""
    return parse_settings(adapter.configuration(), _section_source(adapter))


def _section_source(adapter: SdkAdapter) -> str | None:
    config_path = adapter.configuration_path()
    if config_path is None:
        return None
    found = find_section_file(config_path, SECTION)
    return str(found if found else config_path)


class Plugin:
    """What the entry script keeps for the life of the process: the adapter holds every
    callback registered with Orthanc, so they are never garbage collected."""

    def __init__(self, adapter: SdkAdapter, runtime: Runtime, report: StartReport,
                 settings: ArchiveSettings) -> None:
        self.adapter = adapter
        self.runtime = runtime
        self.report = report
        self.settings = settings


def start(
    sdk: OrthancSdk,
    features: Callable[[ArchiveSettings, SdkAdapter], Sequence[Feature]] = build_features,
) -> Plugin:
    """Load settings, build and check the enabled features, register their callbacks."""
    log = install_logging(sdk)
    adapter = SdkAdapter(sdk)
    try:
        settings = load_settings(adapter)
    except ConfigError as exc:
        sdk.LogError(f"regional-archive: invalid configuration: {exc}")
        raise
    Path(settings.state_directory).mkdir(parents=True, exist_ok=True)
    try:
        runtime = Runtime(features(settings, adapter))
        report = runtime.start(adapter)
    except PluginError as exc:
        sdk.LogError(f"regional-archive: cannot start: {exc}")
        raise
    checks = ",".join(f"{c.name}={'ok' if c.ok else 'FAILED'}" for c in report.checks)
    log.warning(
        "regional-archive %s started: tenant=%s features=%s callbacks=%s checks=%s "
        "http-status-api=%s",
        __version__, settings.tenant, ",".join(report.features) or "-",
        ",".join(k.value for k in report.callbacks) or "-", checks or "-",
        "4.0" if adapter.http_status_takes_size else "4.2+",
    )
    return Plugin(adapter, runtime, report, settings)


__all__ = ["Plugin", "load_settings", "start"]
