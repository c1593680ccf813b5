"""The admin console at /ui/ as an administrator meets it: the real archive, headless Chromium.

Quarantine entries are written into the stack's spool with the writer the plugin uses
(:func:`archive_state.quarantine_spool.write`). One stack as ``scripts/serve`` runs it (:class:`testkit.stack.Stack`: Orthanc, the API service, a
worker, the door) serving the console built by ``scripts/install-console``. Jobs are made
through the real API (``POST /api/jobs``, a kind from ``GET /api/jobs/kinds``) and run by the
real worker; the browser is driven over the DevTools protocol with real mouse clicks, and every
wait polls the page. Screenshots go to the artifacts folder (``console-*.png``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from pydicom.dataelem import DataElement

from archive_state import quarantine_spool
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo
from tests.integration._console import TABLE_ROWS_JS, built_console
from testkit.devtools import Chromium, Page, console_browser
from testkit.stack import Stack

# The console talks to the API service only; what it shows of Orthanc (versions, health) comes
# through the API, whose platform behaviour the other tests cover on both platforms.
pytestmark = [pytest.mark.integration, pytest.mark.platform_independent]

log = logging.getLogger(__name__)

ROOT = "/ui/"
TIMEOUT = 30.0
#: The browser's time zone: the console shows times in it, whatever the machine's zone is.
ZONE = "Asia/Shanghai"
PROGRAMS = ("orthanc", "api", "worker-1", "door")



# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console_build() -> Path:
    return built_console()


@pytest.fixture(scope="module")
def stack(console_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("console")) as running:
        running.wait_healthy()
        yield running


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Chromium]:
    with console_browser(tmp_path_factory.mktemp("console-chromium"),
                         artifacts_dir / "console-chromium.log", time_zone=ZONE) as browser:
        yield browser


@pytest.fixture
def page(chromium: Chromium, stack: Stack) -> Page:
    """The tab, as a browser that has never visited the archive (no stored language), logged
    in as the test administrator (a session cookie, as the login page leaves it)."""
    chromium.tab.call("Storage.clearDataForOrigin", origin=stack.url, storageTypes="all")
    if stack.security_enabled:
        chromium.tab.set_cookie(stack.url, "archive_session", stack.session_cookie())
    return chromium.tab


@pytest.fixture(scope="module")
def jobs(stack: Stack) -> dict[str, dict[str, Any]]:
    """Two jobs of the first kind the workers run, through the API, run by the worker: one that
    succeeds (verify every stored file of an empty archive) and one that fails (a study that does
    not exist). Their final state, by name."""
    kinds = stack.http.get(f"{stack.url}/api/jobs/kinds", timeout=10)
    assert kinds.status_code == 200, kinds.text
    names = [k["name"] for k in kinds.json()]
    assert "archive.verify" in names, names
    made = {}
    missing = {"study": f"no-such-study-{uuid.uuid4().hex[:8]}"}
    for name, params in (("ok", {}), ("failing", missing)):
        body = {"kind": "archive.verify", "params": params,
                "idempotencyKey": f"console-{name}-{uuid.uuid4()}"}
        response = stack.http.post(f"{stack.url}/api/jobs", json=body, timeout=10)
        assert response.status_code == 201, response.text
        made[name] = response.json()
    return {name: _settled(stack, job["id"]) for name, job in made.items()}


# --- helpers -----------------------------------------------------------------------------------


def _settled(stack: Stack, job_id: int, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The job once the worker has finished with it (succeeded, failed or cancelled)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = stack.http.get(f"{stack.url}/api/jobs/{job_id}", timeout=10).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")
        time.sleep(0.1)


def _wait(page: Page, expression: str, what: str, timeout: float = TIMEOUT) -> Any:
    """Poll a JavaScript expression until it is truthy; its value is returned."""
    try:
        return page.wait_for(expression, timeout, interval=0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; page says: {page.text()[:800]!r}; "
                             f"errors: {page.errors()[:5]}") from None


def _wait_text(page: Page, *texts: str, timeout: float = TIMEOUT) -> str:
    """Until the page shows every one of ``texts``; the page's text."""
    condition = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
    return str(_wait(page, f"document.body && ({condition}) && document.body.innerText",
                     f"the page to show {texts}", timeout))


def _rows(page: Page, table: str, count: int, what: str) -> list[list[str]]:
    """The rows of a table, once it has at least ``count``."""
    rows: list[list[str]] = _wait(page, f"(() => {{ const r = {TABLE_ROWS_JS}({json.dumps(table)}); "
                                        f"return r.length >= {count} ? r : null; }})()", what)
    return rows


def _centre(page: Page, finder: str, what: str) -> tuple[float, float]:
    """The middle of the element the JavaScript ``finder`` returns, once it has stopped moving
    (popups open with a transition)."""
    locate = f"""(() => {{ const e = ({finder}); if (!e) return null;
        e.scrollIntoView({{block: 'nearest'}}); const r = e.getBoundingClientRect();
        return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"""
    deadline = time.monotonic() + TIMEOUT
    last = None
    while True:
        here = _wait(page, locate, what)
        if here == last:
            return float(here[0]), float(here[1])
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} keeps moving")
        last = here
        time.sleep(0.1)


def _click(page: Page, selector: str, what: str) -> None:
    """A real mouse click in the middle of the first visible element matching ``selector``."""
    finder = (f"[...document.querySelectorAll({json.dumps(selector)})]"
              ".find(e => e.getBoundingClientRect().width > 0)")
    page.click(*_centre(page, finder, what))


def _screenshot(page: Page, artifacts_dir: Path, name: str) -> Path:
    painted = ("new Promise(done => requestAnimationFrame("
               "() => requestAnimationFrame(() => done(1))))")
    page.evaluate(painted, await_promise=True)  # what was scheduled has been drawn
    path = artifacts_dir / name
    path.write_bytes(page.screenshot())
    log.info("screenshot %s", path)
    return path


def _assert_clean(page: Page, stack: Stack) -> None:
    """No script error, and every request to the archive answered below 400."""
    assert not page.errors(), page.errors()
    failed = [(status, url) for status, url in page.responses()
              if url.startswith(stack.url) and status >= 400]
    assert not failed, failed


def _by_name(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row for row in rows if row}


# --- services ----------------------------------------------------------------------------------


def test_services_in_chinese_by_default(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    health = stack.wait_healthy()
    page.open(stack.url + ROOT)
    rows = _by_name(_rows(page, "services", len(health["services"]), "the services table"))
    assert page.evaluate("location.pathname") == "/ui/services"  # / leads to the services page
    for name in PROGRAMS:
        assert name in rows, rows
        assert rows[name][1] == "正常", rows[name]  # status tag "ok", in Chinese
    by_name = {s["name"]: s for s in health["services"]}
    for name, row in rows.items():
        pid = by_name[name]["pid"]
        assert row[2] == ("" if pid is None else str(pid)), (name, row)
    assert rows["orthanc"][2] == str(stack.program_pid("orthanc"))
    # since: the API's UTC instant, shown in the browser's zone, in zh-CN order
    since = datetime.fromisoformat(by_name["orthanc"]["since"].replace("Z", "+00:00"))
    shown = since.astimezone(ZoneInfo(ZONE)).strftime("%Y/%m/%d %H:%M:%S")
    assert rows["orthanc"][3] == shown, (rows["orthanc"], since)
    text = _wait_text(page, "服务与健康状态", "每 5 秒自动刷新")
    platform = health["platform"]
    for label, value in (("Orthanc", platform["orthanc"]),
                         ("Python 插件", platform["pythonPlugin"]),
                         ("DICOMweb", platform["dicomWeb"]), ("GDCM", platform["gdcm"])):
        assert label in text and value in text, (label, value)
    assert page.evaluate("document.querySelector('[data-test=tenant]').innerText").split() \
        == ["租户:", health["tenant"], "正常"]
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "Services" not in text and "Jobs" not in text
    _screenshot(page, artifacts_dir, "console-services-zh.png")
    _assert_clean(page, stack)


def test_services_in_english_with_lng_and_the_choice_sticks(page: Page, stack: Stack,
                                                            artifacts_dir: Path) -> None:
    page.open(f"{stack.url}{ROOT}services?lng=en")
    rows = _by_name(_rows(page, "services", len(PROGRAMS), "the services table"))
    for name in PROGRAMS:
        assert rows[name][1] == "OK", rows[name]
    text = _wait_text(page, "Services and health", "Refreshes every 5 s", "Python plugin")
    assert "服务" not in text
    assert page.evaluate("document.documentElement.lang") == "en"
    _screenshot(page, artifacts_dir, "console-services-en.png")
    # Reopened without ?lng=, on another page: still English.
    page.open(f"{stack.url}{ROOT}jobs")
    _wait_text(page, "Background jobs", "Any state")
    assert page.evaluate("localStorage.getItem('archive.console.language')") == "en"
    _assert_clean(page, stack)


def test_the_language_switch(page: Page, stack: Stack, jobs: dict[str, dict[str, Any]]) -> None:
    page.open(f"{stack.url}{ROOT}jobs?lng=en")
    _wait_text(page, "Background jobs", "Total ")  # Element Plus's own pagination text, in English
    _click(page, '[data-lang="zh-CN"]', "the 中文 button")
    text = _wait_text(page, "后台任务", "共 ")  # ... and in Chinese, without a reload
    assert "Background jobs" not in text
    assert page.evaluate("localStorage.getItem('archive.console.language')") == "zh-CN"
    _click(page, '[data-nav="/services"]', "the 服务 menu item")
    _wait_text(page, "服务与健康状态")
    assert page.evaluate("location.pathname") == "/ui/services"


def test_the_services_page_says_when_the_api_is_unreachable(page: Page, stack: Stack) -> None:
    page.open(f"{stack.url}{ROOT}services")
    _rows(page, "services", len(PROGRAMS), "the services table")
    supervisor = stack.supervisor().supervisor
    supervisor.stopProcess("api")
    try:
        # The next 5-second refresh gets the door's error answer: a banner says so, with what
        # the door said, and the last report stays on the page.
        _wait(page, "!!document.querySelector('[data-test=health-error]')", "the error banner", 15)
        banner = str(page.evaluate("document.querySelector('[data-test=health-error]').innerText"))
        assert "无法获取归档的健康状态" in banner, banner
        assert "页面会自动重试。" in banner, banner
        assert "HTTP 5" in banner, banner  # the door's status (the auth check or the proxy failed)
        assert "orthanc" in _rows(page, "services", len(PROGRAMS), "the last report")[0][0]
    finally:
        supervisor.startProcess("api")
    stack.wait_healthy()
    _wait(page, "!document.querySelector('[data-test=health-error]')", "the banner to go", 15)


# --- jobs --------------------------------------------------------------------------------------


def test_jobs_list_in_chinese(page: Page, stack: Stack, jobs: dict[str, dict[str, Any]],
                              artifacts_dir: Path) -> None:
    ok, failing = jobs["ok"], jobs["failing"]
    assert ok["state"] == "succeeded" and failing["state"] == "failed", jobs
    total = stack.http.get(f"{stack.url}/api/jobs", timeout=10).json()["total"]
    page.open(f"{stack.url}{ROOT}jobs")
    rows = _by_name(_rows(page, "jobs", min(total, 20), "the jobs table"))
    assert rows[str(ok["id"])][1:3] == ["archive.verify", "已成功"], rows
    assert rows[str(failing["id"])][1:3] == ["archive.verify", "已失败"], rows
    assert rows[str(failing["id"])][4] == f"{failing['attempts']}/{failing['maxAttempts']}"
    _wait_text(page, "后台任务", f"共 {total} 条")
    # Only the failed job offers a retry, neither offers a cancel.
    assert page.evaluate(f"!!document.querySelector('.job-{failing['id']} [data-action=retry]')")
    assert not page.evaluate(f"!!document.querySelector('.job-{ok['id']} [data-action]')")
    _screenshot(page, artifacts_dir, "console-jobs-zh.png")
    _assert_clean(page, stack)

    # The state filter goes to the API and into the URL.
    _click(page, '[data-test="filter-state"]', "the state filter")
    finder = ("[...document.querySelectorAll('.el-select-dropdown__item')].find(o =>"
              " o.innerText.trim() === '已失败' && o.getBoundingClientRect().width > 0)")
    page.click(*_centre(page, finder, "the 已失败 option"))
    _wait(page, "location.search === '?state=failed'", "the filter in the URL")
    failed_only = _wait(page, f"""(() => {{ const r = {TABLE_ROWS_JS}('jobs');
        return r.length && !r.some(row => row[0] === '{ok["id"]}') ? r : null; }})()""",
                        "only failed jobs")
    assert all(row[2] == "已失败" for row in failed_only), failed_only
    assert str(failing["id"]) in {row[0] for row in failed_only}


def test_job_detail_and_retry_in_english(page: Page, stack: Stack, jobs: dict[str, dict[str, Any]],
                                        artifacts_dir: Path) -> None:
    failing = jobs["failing"]
    job_id = failing["id"]
    page.open(f"{stack.url}{ROOT}jobs?lng=en")
    rows = _by_name(_rows(page, "jobs", 2, "the jobs table"))
    assert rows[str(job_id)][2] == "Failed"
    # A click on the row opens the job's page.
    _click(page, f".job-{job_id} td:nth-child(2)", "the failed job's row")
    _wait(page, f"location.pathname === '/ui/jobs/{job_id}'", "the job's page")
    text = _wait_text(page, f"Job {job_id}", "Last error", failing["lastError"], "Parameters",
                      failing["params"]["study"], "Retry")
    for label in ("Created", "Updated", "Started", "Finished", "Attempts", "Kind", "Tenant"):
        assert label in text, label
    _screenshot(page, artifacts_dir, "console-job-detail-en.png")
    _assert_clean(page, stack)

    _click(page, '.job-page [data-action="retry"]', "the Retry button")
    _wait_text(page, f"Retry job {job_id} (archive.verify)?")
    _click(page, ".el-message-box__btns .el-button--primary", "Yes")
    _wait_text(page, f"Job {job_id} is queued again")
    again = _settled(stack, job_id)  # the worker ran it once more (and it failed once more)
    assert again["updatedAt"] > failing["updatedAt"], (again, failing)
    assert again["state"] == "failed"


def test_the_api_problem_is_shown(page: Page, stack: Stack) -> None:
    answer = stack.http.get(f"{stack.url}/api/jobs/987654321", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    page.open(f"{stack.url}{ROOT}jobs/987654321?lng=en")
    _wait_text(page, problem["title"], problem["detail"], "HTTP 404", "No such job")
    page.open(f"{stack.url}{ROOT}jobs/987654321?lng=zh")
    _wait_text(page, problem["detail"], "任务不存在")


# --- quarantine --------------------------------------------------------------------------------

QUARANTINED_PATIENT = PatientInfo("张^伟", "CONSOLE-Q1", "19620418", "M")


def _quarantine_entry(stack: Stack, seed: int) -> str:
    """A CT whose Rows has VR SS (a decoder poison), put in quarantine as the gate would."""
    ds = synthetic.ct_volume(1, 16, 16, patient=QUARANTINED_PATIENT, study=StudyInfo(),
                             seed=seed)[0]
    ds[0x00280010] = DataElement(0x00280010, "SS", 16)
    return quarantine_spool.write(quarantine_spool.folder_of(stack.state_dir),
                                  synthetic.to_bytes(ds), {
        "tenant": "default", "transport": "dimse",
        "remote": {"calling_aet": "CT_ROOM_1", "called_aet": "ARCHIVE", "ip": "127.0.0.1"},
        "reasons": [{"code": "pixel-module-vr", "tag": "(0028,0010)",
                     "message": "Rows has VR SS; the image pixel module needs US"}],
        "sop_instance_uid": str(ds.SOPInstanceUID), "study_instance_uid": str(ds.StudyInstanceUID),
        "patient_id": QUARANTINED_PATIENT.patient_id, "patient_name": QUARANTINED_PATIENT.name})


@pytest.fixture(scope="module")
def quarantined(stack: Stack) -> dict[str, str]:
    """Two entries in the spool: one to look at and fix, one to discard."""
    return {"fix": _quarantine_entry(stack, 21), "discard": _quarantine_entry(stack, 22)}


def _type(page: Page, selector: str, text: str, what: str) -> None:
    """Click into an input and type (real key input, as a user does)."""
    _click(page, selector, what)
    page.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
    page.call("Input.insertText", text=text)


def test_quarantine_list_and_detail_in_chinese(page: Page, stack: Stack,
                                               quarantined: dict[str, str],
                                               artifacts_dir: Path) -> None:
    entry = quarantined["fix"]
    page.open(f"{stack.url}{ROOT}quarantine")
    rows = _rows(page, "quarantine", 2, "the quarantine table")
    ours = [r for r in rows if "张^伟" in r[1]]
    assert len(ours) == 2, rows
    assert all("pixel-module-vr" in r[2] and r[3] == "DICOM (C-STORE)" and r[5] == "隔离中"
               for r in ours), ours
    assert "CT_ROOM_1 · 127.0.0.1" in ours[0][4]
    counts = _wait(page, "document.querySelector('[data-test=reason-counts]')?.innerText",
                   "the counts per reason")
    assert "按原因统计" in counts and "pixel-module-vr · 2" in counts, counts
    _wait_text(page, "隔离区", "入口检查拒收的影像")
    _screenshot(page, artifacts_dir, "console-quarantine-zh.png")
    _assert_clean(page, stack)

    # A time window from the URL goes to the API: a day in 2000 has no entry, today has both.
    page.open(f"{stack.url}{ROOT}quarantine?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
    window = "since=2000-01-01T00%3A00%3A00.000Z&until=2000-01-02T00%3A00%3A00.000Z"
    deadline = time.monotonic() + TIMEOUT
    while not any(window in url for _, url in page.responses()):
        assert time.monotonic() < deadline, [u for _, u in page.responses() if "/api/" in u]
        page.evaluate("0")  # reads the browser's events
        time.sleep(0.1)
    _wait_text(page, "隔离区为空")
    assert not page.evaluate("document.querySelectorAll('[data-test=quarantine] .entry-row').length")
    page.open(f"{stack.url}{ROOT}quarantine")
    _rows(page, "quarantine", 2, "the quarantine table")

    _click(page, f".entry-{entry} td:nth-child(2)", "the entry's row")
    _wait(page, f"location.pathname === '/ui/quarantine/{entry}'", "the entry's page")
    text = _wait_text(page, f"隔离项 {entry[:12]}", "拒收原因", "Rows has VR SS", "标签内容（尽力读取）",
                      "PatientName", "修正标签后重新导入", "原样重新导入", "丢弃", "下载原始文件")
    assert "CONSOLE-Q1" in text and entry in text
    tags = _by_name(_rows(page, "tags", 10, "the tags table"))
    assert tags["(0028,0010)"][1:4] == ["Rows", "SS", "16"], tags["(0028,0010)"]
    assert tags["(0010,0010)"][3] == "张^伟"
    href = page.evaluate("document.querySelector('[data-action=download]').getAttribute('href')")
    assert href == f"/api/quarantine/{entry}/file"
    _screenshot(page, artifacts_dir, "console-quarantine-detail-zh.png")
    _assert_clean(page, stack)


def test_quarantine_fix_and_discard_in_english(page: Page, stack: Stack,
                                               quarantined: dict[str, str],
                                               artifacts_dir: Path) -> None:
    entry = quarantined["fix"]
    page.open(f"{stack.url}{ROOT}quarantine/{entry}?lng=en")
    _wait_text(page, f"Quarantine entry {entry[:12]}", "Reasons", "Tags (read forgivingly)",
               "Fix tags and re-ingest", "Re-ingest as received", "Download as received", "Held")
    _rows(page, "tags", 10, "the tags table")
    _screenshot(page, artifacts_dir, "console-quarantine-detail-en.png")
    # A click on the Rows tag puts it in the fix form with its value; the VR is set to US.
    finder = ("[...document.querySelectorAll('[data-test=tags] .el-table__body tr')]"
              ".find(tr => tr.innerText.includes('(0028,0010)'))")
    page.click(*_centre(page, finder, "the Rows tag"))
    _wait(page, "document.querySelector('[data-edit=\"0\"] input[data-field=tag]')?.value"
                " === '(0028,0010)'", "the edit row")
    assert page.evaluate("document.querySelector('[data-edit=\"0\"] input[data-field=value]')"
                         ".value") == "16"
    _type(page, '[data-edit="0"] input[data-field=vr]', "US", "the VR field")
    page.evaluate("document.querySelector('[data-test=fix-form]').scrollIntoView()")
    _screenshot(page, artifacts_dir, "console-quarantine-fix-en.png")
    _assert_clean(page, stack)
    _click(page, '[data-action="fix"]', "the Fix button")
    _wait_text(page, f"Fix entry {entry[:12]} with 1 change(s) and re-ingest it?")
    _click(page, ".el-message-box__btns .el-button--primary", "Yes")
    _wait_text(page, "Stored in the archive (instance ", "Re-ingested")
    stored = stack.http.get(f"{stack.url}/api/quarantine/{entry}", timeout=10).json()
    assert stored["status"] == "reingested" and stored["reingestedAs"]
    assert stored["lastAttempt"]["fix"]["edits"] == {"(0028,0010)": {"vr": "US", "value": "16"}}
    tags = requests.get(f"{stack.orthanc_url}/instances/{stored['reingestedAs']}/simplified-tags",
                        auth=stack.orthanc_auth, timeout=10).json()
    assert tags["Rows"] == "16" and tags["PatientName"] == "张^伟"

    other = quarantined["discard"]
    page.open(f"{stack.url}{ROOT}quarantine/{other}?lng=en")
    _wait_text(page, f"Quarantine entry {other[:12]}", "Discard")
    _click(page, '[data-action="discard"]', "the Discard button")
    _wait_text(page, f"Discard entry {other[:12]}? Its bytes are deleted for good")
    _click(page, ".el-message-box__btns .el-button--danger", "Yes")
    _wait_text(page, f"Entry {other[:12]} discarded", "Discarded")
    assert not quarantine_spool.data_path(quarantine_spool.folder_of(stack.state_dir),
                                          other).exists()


def test_deep_links_and_assets(stack: Stack, console_build: Path) -> None:
    """The door answers index.html for client routes, the assets as files, a missing one 404."""
    for path in ("/ui/", "/ui/services", "/ui/jobs/12?lng=en", "/ui/jobs", "/ui/quarantine"):
        response = stack.http.get(stack.url + path, timeout=10)
        assert response.status_code == 200, path
        assert '<div id="app">' in response.text and 'src="/ui/assets/' in response.text, path
    assets = sorted(p.name for p in (console_build / "assets").iterdir())
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for name in assets:
        assert stack.http.get(f"{stack.url}/ui/assets/{name}", timeout=10).status_code == 200, name
    assert stack.http.get(f"{stack.url}/ui/assets/index-0000dead.js", timeout=10).status_code == 404
