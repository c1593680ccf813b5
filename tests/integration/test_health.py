from __future__ import annotations

import requests

from testkit.archive_process import ArchiveProcess


def test_health_answers_versions_tenant_and_features(archive: ArchiveProcess, http: requests.Session) -> None:
    r = http.get(f"{archive.url}/api/health", timeout=10)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "ok"
    assert doc["plugin"]["name"] == "regional-archive"
    assert doc["orthanc"]["version"].startswith("1.")
    assert doc["dicomWeb"]["version"]
    assert doc["tenant"] == "default"
    assert doc["role"] == "archive"
    assert "health" in doc["features"] and "viewer" in doc["features"]
    assert doc["orthanc"]["dicomPort"] == archive.dicom_port


def test_plugin_logs_to_orthanc_log(archive: ArchiveProcess) -> None:
    assert "regional-archive 0.1.0 started: tenant=default" in archive.log_text()


def test_unknown_api_method_is_refused(archive: ArchiveProcess, http: requests.Session) -> None:
    r = http.delete(f"{archive.url}/api/health", timeout=10)
    assert r.status_code == 405
