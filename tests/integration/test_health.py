"""``/api/health`` of the whole archive, through the door, as a monitor polls it."""

from __future__ import annotations

import requests

from testkit import platform
from testkit.stack import Stack

SERVICES = {"orthanc", "plugin", "api", "worker-1", "door", "control-db", "state-db"}


def test_health_names_every_service_the_platform_and_the_tenant(
        archive: Stack, http: requests.Session) -> None:
    doc = archive.wait_healthy()
    r = http.get(f"{archive.url}/api/health", timeout=10)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "ok"
    assert doc["tenant"] == "default"
    services = {s["name"]: s for s in doc["services"]}
    assert SERVICES <= set(services), services
    assert all(s["status"] == "ok" for s in services.values()), services
    assert services["orthanc"]["pid"] == archive.program_pid("orthanc")
    assert services["worker-1"]["pid"] == archive.program_pid("worker-1")
    expected = "trixie" if platform.is_trixie() else "bookworm"
    assert doc["platform"]["name"] == expected
    assert doc["platform"]["orthanc"].startswith("1.12." if platform.is_trixie() else "1.10.")
    assert doc["platform"]["dicomWeb"] and doc["platform"]["pythonPlugin"]


def test_plugin_logs_its_start_to_orthancs_log(archive: Stack) -> None:
    assert "regional-archive 0.1.0 started: tenant=default" in archive.log_text("orthanc")


def test_unknown_api_method_is_refused_with_problem_details(
        archive: Stack, http: requests.Session) -> None:
    r = http.delete(f"{archive.url}/api/health", timeout=10)
    assert r.status_code == 405
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["status"] == 405
