"""``/api/health`` assembled from real databases, with Orthanc absent or hanging."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archive_api.health import door_health_url, platform_name
from archive_api.supervisor import all_process_info
from testkit.orthanc_process import free_port
from testkit.processes import stop_process

from ._api_env import hanging_port, make_env

SUPERVISORD = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "supervisord"


def services(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["services"]}


def test_unreachable_orthanc_is_degraded_and_named(tmp_path: Path) -> None:
    env = make_env(tmp_path, door_url=f"http://127.0.0.1:{free_port()}/door-health")
    with TestClient(env.app()) as client:
        response = client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["tenant"] == "default"
    assert body["platform"] == {"name": "unknown", "orthanc": None, "pythonPlugin": None,
                                "dicomWeb": None, "gdcm": None}
    by_name = services(body)
    assert list(by_name) == ["orthanc", "plugin", "api", "worker-1", "door", "control-db",
                             "state-db"]
    assert by_name["orthanc"]["status"] == "down"
    assert by_name["plugin"]["status"] == "down"
    assert "0 change(s) pending" in by_name["plugin"]["detail"]
    assert by_name["api"]["status"] == "ok" and by_name["api"]["pid"] == os.getpid()
    assert by_name["worker-1"] == {**by_name["worker-1"], "status": "down",
                                   "detail": "no heartbeat recorded"}
    assert by_name["door"]["status"] == "down"
    assert by_name["control-db"]["status"] == "ok" and by_name["state-db"]["status"] == "ok"
    assert "qido-decoding" not in body["features"]
    assert "verify-stable-studies" in body["features"]


def test_health_answers_within_a_second_when_everything_hangs(tmp_path: Path) -> None:
    with hanging_port() as orthanc, hanging_port() as door:
        env = make_env(tmp_path, orthanc_port=orthanc,
                       door_url=f"http://127.0.0.1:{door}/door-health")
        with TestClient(env.app()) as client:
            started = time.monotonic()
            response = client.get("/api/health")
            elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.5, elapsed
    by_name = services(response.json())
    assert "timed out" in by_name["orthanc"]["detail"]
    assert "timed out" in by_name["door"]["detail"]


def test_workers_are_judged_by_their_last_heartbeat(tmp_path: Path) -> None:
    env = make_env(tmp_path, archive={"Jobs": {"Workers": 2, "PollSeconds": 2.0}})
    env.deps.registry.beat("worker-1", "default", 4321, "9.9", {"job": 7})
    env.deps.registry.beat("worker-extra", "default", 99, "9.9", {})
    env.deps.registry.beat("worker-2", "other-tenant", 98, "9.9", {})
    with TestClient(env.app()) as client:
        fresh = services(client.get("/api/health").json())
        assert fresh["worker-1"]["status"] == "ok" and fresh["worker-1"]["pid"] == 4321
        assert fresh["worker-1"]["version"] == "9.9" and "job 7" in fresh["worker-1"]["detail"]
        assert fresh["worker-1"]["since"].endswith("Z")
        assert fresh["worker-2"]["status"] == "down"  # the other tenant's beat is not ours
        assert fresh["worker-extra"]["status"] == "ok"
        # 3 x PollSeconds + 5 s = 11 s: just inside, then past it
        env.deps.clock = lambda: datetime.now(UTC) + timedelta(seconds=10)
    with TestClient(env.app()) as client:
        assert services(client.get("/api/health").json())["worker-1"]["status"] == "ok"
    env.deps.clock = lambda: datetime.now(UTC) + timedelta(seconds=12)
    with TestClient(env.app()) as client:
        late = services(client.get("/api/health").json())
    assert late["worker-1"]["status"] == "down"
    assert "worker-extra" not in late  # an extra worker is listed only while alive


class _DoorHealth(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(204 if self.path == "/door-health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def door() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DoorHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_door_is_ok_when_door_health_answers_204(tmp_path: Path, door: str) -> None:
    env = make_env(tmp_path, door_url=f"{door}/door-health")
    with TestClient(env.app()) as client:
        assert services(client.get("/api/health").json())["door"]["status"] == "ok"
    env = make_env(tmp_path / "b", door_url=f"{door}/elsewhere")
    with TestClient(env.app()) as client:
        door_status = services(client.get("/api/health").json())["door"]
    assert door_status["status"] == "degraded" and "404" in door_status["detail"]


@pytest.mark.parametrize("version, name", [("1.10.1", "bookworm"), ("1.12.7", "trixie"),
                                           ("1.11.3", "other"), (None, "unknown")])
def test_platform_name_follows_orthancs_version(version: str | None, name: str) -> None:
    assert platform_name(version) == name


@pytest.mark.skipif(not SUPERVISORD.exists(), reason="supervisor (launcher extra) not installed")
def test_process_states_come_from_supervisords_socket(tmp_path: Path) -> None:
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[unix_http_server]
file={sock}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:worker-1]
command=sleep 60
startsecs=0
[program:orthanc]
command=sleep 60
startsecs=0
[program:door]
command=false
autorestart=false
startsecs=0
""")
    process = subprocess.Popen([str(SUPERVISORD), "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        states: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if sock.exists():
                try:
                    states = {p.name: p for p in all_process_info(sock)}
                except OSError:
                    states = {}
                wanted = {"worker-1": "RUNNING", "orthanc": "RUNNING", "door": "EXITED"}
                if all(name in states and states[name].state == state
                       for name, state in wanted.items()):
                    break
            time.sleep(0.1)
        assert states["worker-1"].state == "RUNNING" and states["worker-1"].pid
        assert states["worker-1"].since is not None
        assert states["door"].state == "EXITED" and states["door"].pid is None
        env = make_env(tmp_path / "env")
        env.deps.supervisor_socket = sock
        env.deps.registry.beat("worker-1", "default", 1, "x", {})
        with TestClient(env.app()) as client:
            by_name = services(client.get("/api/health").json())
        assert by_name["worker-1"]["pid"] == states["worker-1"].pid
        assert by_name["orthanc"]["pid"] == by_name["plugin"]["pid"] == states["orthanc"].pid
        assert by_name["door"]["status"] == "down"
        assert by_name["door"]["detail"].startswith("supervisord: EXITED")
    finally:
        stop_process(process)


def test_door_health_is_asked_on_loopback(tmp_path: Path) -> None:
    env = make_env(tmp_path, archive={"Door": {"ListenAddress": "0.0.0.0", "HttpPort": 8080}})
    assert door_health_url(env.config) == "http://127.0.0.1:8080/door-health"
    env = make_env(tmp_path / "b", archive={"Door": {"ListenAddress": "10.1.2.3"}})
    assert door_health_url(env.config) == "http://10.1.2.3:8042/door-health"
