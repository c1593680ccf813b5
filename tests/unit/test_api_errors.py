"""One error translation for ``/api``: RFC 9457 problem details, nothing internal leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from archive_api.orthanc import OrthancHttpError

from ._api_env import Env, make_env

SECRET = "SELECT password FROM users -- internal"


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture()
def app(env: Env) -> FastAPI:
    app = env.app()

    @app.get("/api/test/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    @app.get("/api/test/orthanc/{status}")
    async def orthanc(status: int) -> None:
        error = OrthancHttpError(status, "GET", "/x", SECRET)
        error.orthanc_status = 27 if status == 500 else None
        raise error

    return app


@pytest.fixture()
def client(app: FastAPI, env: Env) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, headers=env.admin_headers) as c:
        yield c


def test_a_500_says_only_an_incident_id_and_logs_it(client: TestClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="archive_api.errors"):
        response = client.get("/api/test/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "incident"}
    assert body["title"] == "Internal Server Error" and body["instance"] == "/api/test/boom"
    assert SECRET not in response.text and "RuntimeError" not in response.text
    logged = [r for r in caplog.records if body["incident"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert SECRET in str(logged[0].exc_info[1])


@pytest.mark.parametrize("status, expected", [(404, 404), (400, 400), (500, 400), (503, 502)])
def test_orthanc_errors_are_mapped_without_orthancs_text(client: TestClient, status: int,
                                                         expected: int) -> None:
    response = client.get(f"/api/test/orthanc/{status}")
    assert response.status_code == expected
    assert response.headers["content-type"] == "application/problem+json"
    assert SECRET not in response.text


def test_orthanc_unreachable_is_503(client: TestClient) -> None:
    response = client.get("/api/dicom-web/studies", params={"PatientName": "张*"})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == 503 and "Orthanc" in body["detail"]
    assert "127.0.0.1" not in response.text


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                              "instance": "/api/nothing-here"}
    wrong = client.delete("/api/jobs")
    assert wrong.status_code == 405 and wrong.json()["status"] == 405
    assert "GET" in wrong.headers["allow"]


def test_auth_check_asks_for_a_credential_and_answers_an_admin_key(client: TestClient) -> None:
    anonymous = client.get("/api/auth/check", headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.headers["X-Accel-Expires"] == "0"
    allowed = client.get("/api/auth/check", headers={"X-Door-Area": "dicomweb-view"})
    assert allowed.status_code == 204 and allowed.content == b""
    assert allowed.headers["X-Archive-User"] == "unit-tests"


def test_openapi_is_generated_and_the_docs_are_served_locally(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/health", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/retry",
                 "/api/jobs/{job_id}/cancel", "/api/jobs/kinds", "/api/auth/check",
                 "/api/dicom-web/studies",
                 "/api/dicom-web/studies/{study}/series/{series}/instances"):
        assert path in paths, path
    job = spec["components"]["schemas"]["JobOut"]["properties"]
    assert {"maxAttempts", "lastError", "leaseOwner", "runAfter"} <= set(job)
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    redoc = client.get("/api/redoc")
    assert "/api/docs/assets/redoc.standalone.js" in redoc.text
    assert "fonts.googleapis" not in redoc.text
