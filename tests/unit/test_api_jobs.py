"""``/api/jobs`` over a real SQLite state database (real migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ._api_env import Env, make_env


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture()
def client(env: Env) -> Iterator[TestClient]:
    with TestClient(env.app(), headers=env.admin_headers) as c:
        yield c


def test_job_json_is_camel_case_with_progress(env: Env, client: TestClient) -> None:
    job = env.queue.enqueue("archive.verify", {"study": "s1"})
    assert env.queue.claim("w1") is not None
    env.queue.heartbeat(job.id, "w1", done=2, total=5, message="checking")
    body = client.get(f"/api/jobs/{job.id}").json()
    assert body["id"] == job.id and body["kind"] == "archive.verify"
    assert body["state"] == "running" and body["leaseOwner"] == "w1"
    assert body["progress"] == {"done": 2, "total": 5, "message": "checking"}
    assert body["maxAttempts"] == 5 and body["attempts"] == 1
    assert {"createdAt", "updatedAt", "startedAt", "finishedAt", "runAfter", "lastError",
            "result", "params", "tenant"} <= set(body)


def test_list_filters_by_state_and_kind_and_pages(env: Env, client: TestClient) -> None:
    ids = [env.queue.enqueue("archive.verify", {"study": f"s{i}"}).id for i in range(5)]
    other = env.queue.enqueue("other.kind", {}).id
    env.queue.cancel(ids[0])
    page = client.get("/api/jobs", params={"kind": "archive.verify", "limit": 2}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert [j["id"] for j in page["items"]] == [ids[4], ids[3]]  # newest first
    page2 = client.get("/api/jobs", params={"kind": "archive.verify", "limit": 2,
                                            "offset": 4}).json()
    assert [j["id"] for j in page2["items"]] == [ids[0]]
    cancelled = client.get("/api/jobs", params={"state": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    everything = client.get("/api/jobs").json()
    assert everything["total"] == 6 and everything["items"][0]["id"] == other
    assert client.get("/api/jobs", params={"tenant": "elsewhere"}).json()["total"] == 0


@pytest.mark.parametrize("query, field", [
    ({"state": "sleeping"}, "state"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_bad_filters_are_400_naming_the_field(client: TestClient, query: dict[str, object],
                                              field: str) -> None:
    response = client.get("/api/jobs", params=query)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 400 and field in body["detail"]
    assert [e["field"] for e in body["errors"]] == [field]


def test_unknown_job_is_404_problem(client: TestClient) -> None:
    response = client.get("/api/jobs/999")
    assert response.status_code == 404
    body = response.json()
    assert body["title"] == "Not Found" and body["instance"] == "/api/jobs/999"
    assert "999" in body["detail"]


def test_retry_and_cancel_follow_the_state_machine(env: Env, client: TestClient) -> None:
    job = env.queue.enqueue("archive.verify", {})
    conflict = client.post(f"/api/jobs/{job.id}/retry")
    assert conflict.status_code == 409 and "queued" in conflict.json()["detail"]
    cancelled = client.post(f"/api/jobs/{job.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    retried = client.post(f"/api/jobs/{job.id}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    assert env.queue.claim("w1") is not None
    env.queue.succeed(job.id, "w1", {"checked": 0, "failed": []})
    for action in ("cancel", "retry"):
        response = client.post(f"/api/jobs/{job.id}/{action}")
        assert response.status_code == 409, action
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/api/jobs/{job.id}").json()["result"] == {"checked": 0, "failed": []}


def test_cancel_of_a_running_job_asks_its_worker(env: Env, client: TestClient) -> None:
    job = env.queue.enqueue("archive.verify", {})
    env.queue.claim("w1")
    assert client.post(f"/api/jobs/{job.id}/cancel").json()["state"] == "running"
    assert env.queue.heartbeat(job.id, "w1") is False


def test_kinds_lists_the_workers_table(client: TestClient) -> None:
    kinds = client.get("/api/jobs/kinds").json()
    assert [k["name"] for k in kinds] == ["archive.crash-quarantine", "archive.verify",
                                          "audit.dicom-log", "audit.door-log"]
    assert "quarantine" in kinds[0]["description"] and "MD5" in kinds[1]["description"]


def test_post_enqueues_a_known_kind_once_per_idempotency_key(env: Env,
                                                              client: TestClient) -> None:
    body = {"kind": "archive.verify", "params": {"study": "abc"}, "idempotencyKey": "k-1"}
    first = client.post("/api/jobs", json=body)
    assert first.status_code == 201
    assert first.json()["state"] == "queued" and first.json()["params"] == {"study": "abc"}
    again = client.post("/api/jobs", json=body)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    clash = client.post("/api/jobs", json={**body, "params": {}})
    assert clash.status_code == 409
    assert env.queue.list()[1] == 1


@pytest.mark.parametrize("body, field", [
    ({"kind": "no.such.kind"}, "kind"),
    ({"kind": "archive.verify", "params": {"studies": ["a"]}}, "params"),
    ({"kind": "archive.verify", "params": {"study": 3}}, "params"),
])
def test_post_refuses_kinds_and_params_no_worker_runs(env: Env, client: TestClient,
                                                      body: dict[str, object],
                                                      field: str) -> None:
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert env.queue.list()[1] == 0


def test_post_body_validation_is_422_with_the_field(client: TestClient) -> None:
    response = client.post("/api/jobs", json={"params": {}})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "kind", "message": "Field required"}]
    extra = client.post("/api/jobs", json={"kind": "archive.verify", "priority": 1})
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "priority"

