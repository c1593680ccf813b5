"""Feature dispatch and the health document, with an in-memory PluginHost.

The host here stands in for our own Protocol, not for Orthanc: the same code runs against a real
Orthanc in tests/integration/test_health.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regional_archive.errors import BadRequest, NotFound
from regional_archive.features import PluginContext, register_all
from regional_archive.health import HealthFeature, build_health
from regional_archive.http import Handler, Request, error_response
from regional_archive.settings import parse_settings


@dataclass
class RecordingHost:
    answers: dict[str, Any]
    routes: dict[str, tuple[list[str], Handler]] = field(default_factory=dict)

    def add_route(self, methods: Sequence[str], uri_regex: str, handler: Handler) -> None:
        self.routes[uri_regex] = (list(methods), handler)

    def rest_get_json(self, uri: str) -> Any:
        return self.answers.get(uri)

    def rest_get_after_plugins(self, uri: str) -> bytes:
        return json.dumps(self.answers.get(uri)).encode()

    def dicomweb_root(self) -> str:
        return "/dicom-web/"


@dataclass(frozen=True)
class Toggle:
    name: str
    on: bool

    def is_enabled(self, settings: Any) -> bool:
        return self.on

    def register(self, context: PluginContext) -> None:
        context.host.add_route(["GET"], f"/api/{self.name}", lambda r: error_response(NotFound(self.name)))


ORTHANC = {
    "/system": {"Version": "1.10.1", "Name": "X", "DicomAet": "ARCHIVE", "DicomPort": 4242},
    "/plugins/dicom-web": {"ID": "dicom-web", "Version": "1.7"},
    "/plugins/gdcm": {"ID": "gdcm", "Version": "1.5"},
    "/plugins/python": {"ID": "python", "Version": "4.0"},
}


def settings_for(tmp_path: Path) -> Any:
    return parse_settings({"Archive": {"StateDirectory": str(tmp_path), "Tenant": "clinic-7",
                                       "Viewer": {"Enabled": False}}})


def test_only_enabled_features_register_in_table_order(tmp_path: Path) -> None:
    host = RecordingHost(ORTHANC)
    names = register_all([Toggle("a", True), Toggle("b", False), Toggle("c", True)],
                         settings_for(tmp_path), host, logging.getLogger("t"))
    assert names == ["a", "c"]
    assert sorted(host.routes) == ["/api/a", "/api/c"]


def test_health_reports_versions_tenant_and_features(tmp_path: Path) -> None:
    host = RecordingHost(ORTHANC)
    context = PluginContext(settings_for(tmp_path), host, logging.getLogger("t"), ("health", "x"))
    doc = build_health(context)
    assert doc["status"] == "ok"
    assert doc["orthanc"]["version"] == "1.10.1"
    assert doc["dicomWeb"]["version"] == "1.7"
    assert doc["tenant"] == "clinic-7"
    assert doc["features"] == ["health", "x"]


def test_health_is_degraded_when_a_plugin_is_missing(tmp_path: Path) -> None:
    answers = dict(ORTHANC)
    del answers["/plugins/dicom-web"]
    host = RecordingHost(answers)
    HealthFeature().register(PluginContext(settings_for(tmp_path), host, logging.getLogger("t"), ()))
    _methods, handler = host.routes["/api/health"]
    response = handler(Request("GET", "/api/health"))
    body = json.loads(response.body)
    assert response.status == 503
    assert body["status"] == "degraded"
    assert body["dependencies"]["dicom-web"] == {"status": "missing", "version": None}


def test_errors_become_json_with_status() -> None:
    assert error_response(NotFound("x")).status == 404
    assert error_response(BadRequest("y")).status == 400
    response = error_response(RuntimeError("boom"))
    assert response.status == 500
    assert json.loads(response.body) == {"error": "InternalError", "message": "boom"}
