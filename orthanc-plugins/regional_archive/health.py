"""``GET /api/health``: what is running here and whether its parts answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .features import PluginContext
from .http import Request, Response, json_response
from .settings import ArchiveSettings


def build_health(context: PluginContext) -> dict[str, Any]:
    """Assemble the health document from Orthanc's own answers and our settings."""
    host, settings = context.host, context.settings
    system = host.rest_get_json("/system") or {}
    dicomweb = host.rest_get_json("/plugins/dicom-web")
    gdcm = host.rest_get_json("/plugins/gdcm")
    python = host.rest_get_json("/plugins/python")
    state_dir = Path(settings.state_directory)
    dependencies: dict[str, dict[str, Any]] = {
        "orthanc": {"status": "ok" if system else "down", "version": system.get("Version")},
        "dicom-web": _plugin_status(dicomweb),
        "gdcm": _plugin_status(gdcm),
        "python": _plugin_status(python),
        "state-directory": {
            "status": "ok" if state_dir.is_dir() else "missing",
            "path": str(state_dir),
        },
    }
    healthy = all(d["status"] == "ok" for d in dependencies.values())
    return {
        "status": "ok" if healthy else "degraded",
        "plugin": {"name": "regional-archive", "version": __version__},
        "orthanc": {
            "version": system.get("Version"),
            "name": system.get("Name"),
            "dicomAet": system.get("DicomAet"),
            "dicomPort": system.get("DicomPort"),
            "databaseVersion": system.get("DatabaseVersion"),
            "databaseBackend": system.get("DatabaseBackendPlugin") or "SQLite (built-in)",
            "storageBackend": system.get("StorageAreaPlugin") or "filesystem (built-in)",
        },
        "dicomWeb": {"version": dicomweb.get("Version") if dicomweb else None},
        "tenant": settings.tenant,
        "role": settings.role,
        "features": list(context.enabled_features),
        "dependencies": dependencies,
    }


def _plugin_status(info: Any) -> dict[str, Any]:
    if not info:
        return {"status": "missing", "version": None}
    return {"status": "ok", "version": info.get("Version")}


@dataclass(frozen=True)
class HealthFeature:
    name: str = "health"

    def is_enabled(self, settings: ArchiveSettings) -> bool:
        return True

    def register(self, context: PluginContext) -> None:
        def handle(_request: Request) -> Response:
            document = build_health(context)
            return json_response(document, 200 if document["status"] == "ok" else 503)

        context.host.add_route(["GET"], "/api/health", handle)
