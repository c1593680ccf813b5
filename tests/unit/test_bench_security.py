"""The benchmark with security on (issue 8): every request to a door of ours carries the
credential, and the security cases compare ours as shipped with ours with security off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from archive_tools.bench import cli, dicomweb, ingest, plan, viewer, worker
from archive_tools.bench import data as bench_data
from archive_tools.bench.fleet import FleetOutcome
from archive_tools.bench.results import SECURITY_RATE_RATIO, SECURITY_RATIO
from archive_tools.bench.servers import (OPEN, OPEN_OVERRIDES, SECURED, Server, ServerError,
                                         open_stack, start_ours)

BEARER = {"Authorization": "Bearer ak_k1_secret"}


def _series() -> bench_data.DataSet:
    return bench_data.DataSet("s", Path("."), (Path("a"), Path("b")), (1, 1), ("1.2",),
                              ("1.2.3",), ("1.2.3.4",), ("1.5", "1.6"), "series", 0.0)


def _ours(headers: Mapping[str, str] = BEARER) -> Server:
    return Server("ours", "http://127.0.0.1:1", "http://127.0.0.1:2", 4242, "ARCHIVE",
                  admin_auth=("internal", "secret"), headers=headers)


# --- the credential on every request --------------------------------------------------------


def test_views_of_ours_keep_its_credential_and_direct_gets_only_its_own() -> None:
    ours = _ours()
    secured = ours.view(SECURED)
    direct = ours.view("direct", "http://127.0.0.1:2", ("internal", "secret"))
    assert secured.headers == BEARER and secured.session.headers["Authorization"] == BEARER[
        "Authorization"]
    assert ours.session.headers["Authorization"] == BEARER["Authorization"]
    assert "Authorization" not in direct.headers and direct.session.auth == ("internal", "secret")
    assert "Authorization" not in direct.session.headers
    assert secured.client_job() == {"auth": None, "headers": BEARER}
    assert direct.client_job() == {"auth": ["internal", "secret"], "headers": {}}
    assert ours.admin.auth == ("internal", "secret") and "Authorization" not in ours.admin.headers
    for server in (ours, secured, direct):
        server.close()


def test_worker_sessions_send_the_job_headers() -> None:
    session = worker._session({"auth": None, "headers": BEARER})
    assert session.headers["Authorization"] == BEARER["Authorization"] and session.auth is None
    assert "Authorization" not in worker._session({"auth": None}).headers


def test_every_wado_and_qido_request_of_a_secured_side_carries_the_credential(
        monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[Mapping[str, Any]] = []

    def fake_run_workers(given: Sequence[Mapping[str, Any]], *, timeout: float) -> FleetOutcome:
        jobs.extend(given)
        return FleetOutcome(0.0, 1.0, 4, 40, None, (0.1, 0.1, 0.1, 0.1))

    monkeypatch.setattr(dicomweb, "run_workers", fake_run_workers)
    case = dicomweb.self_cases(_series(), (SECURED, OPEN), metadata_requests=1,
                               frame_requests=4, metadata_clients=(1,), frame_clients=(2,))[1]
    samples = case.run(_ours())
    assert len(jobs) == 2 and all(j["headers"] == BEARER and j["auth"] is None for j in jobs)
    assert samples["throughput"] == [4.0]
    jobs.clear()
    qido = dicomweb.QidoCase("PatientID", 10, ("/studies?PatientID=P1",))
    qido.run(_ours())
    assert [j["headers"] for j in jobs] == [BEARER]


def test_stow_clients_send_the_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[Mapping[str, Any]] = []

    def fake_run_workers(given: Sequence[Mapping[str, Any]], *, timeout: float,
                         on_go: Any = None) -> FleetOutcome:
        jobs.extend(given)
        return FleetOutcome(0.0, 1.0, 2, 2, None, ())

    @dataclass
    class NoArrival:
        started: bool = False

        def start(self, _t0: float = 0.0) -> None:
            self.started = True

    monkeypatch.setattr(ingest, "run_workers", fake_run_workers)
    case = ingest.IngestCase("stow", "small", 2, _series())
    arrival: Any = NoArrival()
    case._send(_ours(), arrival)
    assert len(jobs) == 2 and all(j["kind"] == "stow" and j["headers"] == BEARER for j in jobs)


@dataclass
class FakeStack:
    """What :func:`start_ours` and :func:`cli.browser_cookies` ask of a Stack."""

    security_enabled: bool = True
    url: str = "http://127.0.0.1:10"
    orthanc_url: str = "http://127.0.0.1:11"
    orthanc_auth: tuple[str, str] = ("internal", "pw")
    http_port: int = 10
    orthanc_port: int = 11
    api_port: int = 12
    dicom_port: int = 13
    aet: str = "ARCHIVE"
    workdir: Path = Path("/nonexistent")
    logins: int = 0

    def start(self, timeout: float) -> None:
        pass

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        return {}

    def auth_headers(self) -> dict[str, str]:
        return dict(BEARER) if self.security_enabled else {}

    def session_cookie(self) -> str:
        self.logins += 1
        return f"cookie-{self.logins}"


def test_a_started_archive_is_reached_with_its_administrator_credential() -> None:
    secured: Any = FakeStack()
    opened: Any = FakeStack(security_enabled=False)
    ours, other = start_ours(secured), start_ours(opened, name=OPEN)
    assert ours.headers == BEARER and ours.admin_auth == ("internal", "pw")
    assert other.name == OPEN and other.headers == {}
    assert open_stack(Path("/tmp/x")).overrides == OPEN_OVERRIDES
    assert not open_stack(Path("/tmp/x")).security_enabled
    ours.close()
    other.close()


def test_browsers_get_a_session_cookie_only_where_security_is_on() -> None:
    stacks: Any = {"ours": FakeStack(), OPEN: FakeStack(security_enabled=False)}
    cookies = cli.browser_cookies(stacks, {SECURED: "ours", OPEN: OPEN})
    assert cookies == {SECURED: {viewer.SESSION_COOKIE: "cookie-1"}}
    assert cli.browser_cookies(stacks, {"ours": "ours", "vanilla": "vanilla"}) == {
        "ours": {viewer.SESSION_COOKIE: "cookie-2"}}


@dataclass
class FakePage:
    """Records what the viewer case asks of the browser's tab."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls.append((method, params))
        return {}

    def navigate(self, url: str) -> None:
        self.calls.append(("navigate", url))

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.calls.append(("set_cookie", (url, name, value)))

    def wait_for(self, expression: str, timeout: float, interval: float = 0.1) -> Any:
        return 420.0

    def evaluate(self, expression: str) -> Any:
        return {"search": 100.0, "metadata": 200.0, "frame": None}


@dataclass
class FakeChromium:
    tab: FakePage = field(default_factory=FakePage)


def test_the_viewer_loads_with_only_its_sides_cookies_cold_and_warm() -> None:
    chromium: Any = FakeChromium()
    case = viewer.ViewerCase(chromium, "1.2.3", 60, sides=(SECURED, OPEN),
                             cookies={SECURED: {viewer.SESSION_COOKIE: "tok"}},
                             prefix="security/viewer", ratio_target=SECURITY_RATIO)
    secured, opened = _ours().view(SECURED), Server(OPEN, "http://127.0.0.1:5", "", 1, "A")
    samples = case.run(secured)
    assert samples["first image, cold cache"] == [0.42]
    assert samples["warm: series metadata received"] == [0.2]
    assert "warm: first frame received" not in samples
    calls = chromium.tab.calls
    cookie = ("set_cookie", (secured.url, viewer.SESSION_COOKIE, "tok"))
    assert calls.count(cookie) == 2  # cold and warm, each after the cookies were cleared
    for at in (i for i, c in enumerate(calls) if c == cookie):
        assert calls[at - 1][0] == "Network.clearBrowserCookies"
        assert calls[at + 1][0] == "navigate" and "StudyInstanceUIDs=1.2.3" in calls[at + 1][1]
    calls.clear()
    case.run(opened)
    assert not [c for c in calls if c[0] == "set_cookie"]
    assert [c[0] for c in calls].count("Network.clearBrowserCookies") == 2
    assert case.key == "security/viewer/first-image"
    assert viewer.ViewerCase(chromium, "1.2.3", 60).key == "viewer/first-image"
    targets = {s.name: s.ratio_target for s in case.specs}
    assert targets["first image, cold cache"] == targets["first image, warm cache"] == SECURITY_RATIO
    assert targets["warm: first frame received"] is None


# --- the security cases ---------------------------------------------------------------------


def test_security_cases_are_secured_against_open_with_issue_8_targets() -> None:
    cases = dicomweb.self_cases(_series(), (SECURED, OPEN), metadata_requests=2,
                                frame_requests=3, metadata_clients=(1,), frame_clients=(1, 8))
    assert [c.key for c in cases] == ["security/series-metadata/c1", "security/frame/c1",
                                      "security/frame/c8"]
    assert all(c.sides == (SECURED, OPEN) and c.scenario == dicomweb.SECURITY for c in cases)
    latency, p95, rate = cases[1].specs
    assert (latency.ratio_target, p95.ratio_target, rate.ratio_target) == (
        SECURITY_RATIO, None, SECURITY_RATE_RATIO)
    assert SECURITY_RATIO.requirement == "issue 8" and SECURITY_RATIO.met(1.05)
    assert not SECURITY_RATIO.met(1.06) and SECURITY_RATE_RATIO.met(1 / 1.05)
    door = dicomweb.wado_cases(_series(), _series(), metadata_requests=2, frame_requests=3,
                               rendered_requests=1, metadata_clients=(1,),
                               frame_clients=(1, 8), door=True)
    assert [c.requests for c in door] == [c.requests for c in cases]  # the same frames


def test_the_security_scenario_is_chosen_like_the_others() -> None:
    assert "security" in plan.SCENARIOS and "security" in cli.SCENARIO_FUNCTIONS
    assert cli.parse_args(["--quick", "--only", "security"]).only == ["security"]
    for p in (plan.FULL, plan.QUICK):
        assert p.security_metadata_clients == (1,) and p.security_frame_clients == (1, 8)
    case = dicomweb.self_cases(_series(), (SECURED, OPEN), metadata_requests=1,
                               frame_requests=1, metadata_clients=(1,), frame_clients=())[0]
    assert cli.profiled_programs(case) == ("orthanc", "api")  # the check runs in the API


def test_the_security_check_refuses_a_comparison_that_would_measure_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"http://127.0.0.1:1/p": 401, "http://127.0.0.1:5/p": 200}

    @dataclass
    class Answer:
        status_code: int

    def fake_get(url: str, timeout: float) -> Answer:
        return Answer(answers[url])

    monkeypatch.setattr(requests, "get", fake_get)
    secured, opened = _ours().view(SECURED), Server(OPEN, "http://127.0.0.1:5", "", 1, "A")
    cli.check_security(secured, opened, "/p")
    answers["http://127.0.0.1:1/p"] = 200  # security not on after all
    with pytest.raises(ServerError, match="secured"):
        cli.check_security(secured, opened, "/p")
    answers["http://127.0.0.1:1/p"], answers["http://127.0.0.1:5/p"] = 401, 401
    with pytest.raises(ServerError, match="open"):
        cli.check_security(secured, opened, "/p")


def test_a_case_the_judged_side_never_managed_is_left_out_of_the_document() -> None:
    from archive_tools.bench.results import Better, MetricResult, MetricSpec
    from archive_tools.bench.runner import samples_of

    spec = MetricSpec("latency p50", "ms", Better.LOWER)
    failed = MetricResult("s", "security/frame/c1", "frame", spec, vanilla=samples_of([2.0]),
                          sides=(SECURED, OPEN))
    measured = MetricResult("s", "security/frame/c8", "frame", spec, samples_of([2.1]),
                            samples_of([2.0]), sides=(SECURED, OPEN))
    assert cli.reportable([failed, measured]) == [measured]
