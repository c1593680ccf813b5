"""The console's security pages against the real, secured archive, in headless Chromium (issue 8).

One archive with security on (``SECURED``, ``LockoutThreshold`` 3) and one browser for the
module; the tests run in order and tell one story:

1. ``/ui/`` without a session leads to the login page, in Chinese; a wrong password shows the
   API's refusal in Chinese; the administrator's login lands on the console.
2. The administrator creates 王秀英 on the 用户 page (the username is Chinese too: the archive
   takes letters of any script, so the name goes through the URL of the audit filter, the CSV
   and the ATNA export) and grants 临床医生 on a hospital unit; the API has the user and the grant.
3. Three wrong passwords (over HTTP) lock the account; the login page says so in Chinese, the
   用户 page shows the lock, the administrator unlocks it there and the API lets the user in.
4. The 审计 page shows the failures, the lockout and the unlock with who did them; the operator
   and action filters go to the API; the check of the hash chain says it is intact; the CSV and
   ATNA links download the filtered rows, the Chinese name intact in UTF-8.
5. The language switch turns the same pages into English; the login page stays English.
6. 王秀英 logs in, must change the password first, then sees no administration pages: opening
   /ui/users or /ui/audit shows a 403 notice (the API refuses too); logging out ends the session
   (its cookie gets 401 from the API).

The browser is driven over the DevTools protocol with real mouse clicks and key input; every wait
polls the page. Screenshots go to the artifacts folder (``console-security-*.png``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.integration._console import TABLE_ROWS_JS, built_console
from testkit.devtools import Chromium, Page, console_browser
from testkit.orthanc_process import deep_merge
from testkit.stack import ADMIN_PASSWORD, ADMIN_USERNAME, SECURED, Stack

pytestmark = [pytest.mark.integration]

log = logging.getLogger(__name__)

TIMEOUT = 30.0
ZONE = "Asia/Shanghai"
THRESHOLD = 3
OVERRIDES = deep_merge(SECURED, {"archive.json": {"Archive": {"Security": {
    "LockoutThreshold": THRESHOLD}}}})

USERNAME = "王秀英"
DISPLAY_NAME = "王秀英（心内科）"
PASSWORD = "Qing-Shan-Lu-2026"
NEW_PASSWORD = "Bai-Yun-Shan-2027"
HOSPITAL = "第一人民医院"
ADMIN_DISPLAY_NAME = "测试管理员"  # what Stack.provision_administrator names the administrator



# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console_build() -> Path:
    return built_console()


@pytest.fixture(scope="module")
def stack(console_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("console-security"), overrides=OVERRIDES) as running:
        assert running.security_enabled
        running.wait_healthy()
        yield running


@pytest.fixture(scope="module")
def hospital(stack: Stack) -> dict[str, Any]:
    """A hospital under the region (create-admin made the region), holding this archive's tenant."""
    region = [u for u in stack.http.get(f"{stack.url}/api/org-units", timeout=10).json()
              if u["kind"] == "region"]
    assert len(region) == 1, region
    tenant = stack.wait_healthy()["tenant"]
    made = stack.http.post(f"{stack.url}/api/org-units", timeout=10, json={
        "kind": "hospital", "name": HOSPITAL, "nameEn": "First People's Hospital",
        "parentId": region[0]["id"], "tenant": tenant})
    assert made.status_code == 201, made.text
    unit: dict[str, Any] = made.json()
    return unit


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Chromium]:
    with console_browser(tmp_path_factory.mktemp("console-security-chromium"),
                         artifacts_dir / "console-security-chromium.log",
                         time_zone=ZONE) as browser:
        yield browser


@pytest.fixture
def fresh(chromium: Chromium, stack: Stack) -> Page:
    """The tab, as a browser that has never visited the archive: no cookie, no stored language."""
    chromium.tab.call("Storage.clearDataForOrigin", origin=stack.url, storageTypes="all")
    chromium.tab.call("Network.clearBrowserCookies")
    return chromium.tab


@pytest.fixture
def admin(fresh: Page, stack: Stack) -> Page:
    """The tab, logged in as the test administrator (the cookie the login page leaves)."""
    fresh.set_cookie(stack.url, "archive_session", stack.session_cookie())
    return fresh


# --- helpers -----------------------------------------------------------------------------------


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


def _wait_path(page: Page, path: str) -> None:
    _wait(page, f"location.pathname === {json.dumps(path)}", f"the browser at {path}")


def _query(page: Page, name: str) -> str | None:
    value = page.evaluate(f"new URLSearchParams(location.search).get({json.dumps(name)})")
    return None if value is None else str(value)


def _rows(page: Page, table: str, what: str, count: int = 1) -> list[list[str]]:
    """The rows of a table, once it has at least ``count``."""
    rows: list[list[str]] = _wait(page, f"(() => {{ const r = {TABLE_ROWS_JS}({json.dumps(table)}); "
                                        f"return r.length >= {count} ? r : null; }})()", what)
    return rows


def _centre(page: Page, finder: str, what: str) -> tuple[float, float]:
    """The middle of the element the JavaScript ``finder`` returns, once it has stopped moving
    (dialogs and popups open with a transition)."""
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


def _visible(selector: str) -> str:
    return (f"[...document.querySelectorAll({json.dumps(selector)})]"
            ".find(e => e.getBoundingClientRect().width > 0)")


def _click(page: Page, selector: str, what: str) -> None:
    """A real mouse click in the middle of the first visible element matching ``selector``."""
    page.click(*_centre(page, _visible(selector), what))


def _choose(page: Page, select: str, option: str, what: str) -> None:
    """Open an Element Plus select (its wrapper) and click the visible option ``option``."""
    _click(page, f"{select} .el-select__wrapper", what)
    finder = ("[...document.querySelectorAll('.el-select-dropdown__item')].find(o =>"
              f" o.innerText.trim() === {json.dumps(option)}"
              " && o.getBoundingClientRect().width > 0)")
    page.click(*_centre(page, finder, f"the option {option!r} of {what}"))
    _wait(page, "![...document.querySelectorAll('.el-select__popper')].some(p =>"
                " getComputedStyle(p).display !== 'none')", f"{what}'s list to close")


def _type(page: Page, selector: str, text: str, what: str) -> None:
    """Click into an input and type (real key input, as a user does), replacing what it held."""
    _click(page, selector, what)
    page.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
    page.call("Input.insertText", text=text)


def _enter(page: Page) -> None:
    page.call("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter",
              windowsVirtualKeyCode=13, text="\r")
    page.call("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter",
              windowsVirtualKeyCode=13)


def _screenshot(page: Page, artifacts_dir: Path, name: str) -> Path:
    painted = ("new Promise(done => requestAnimationFrame("
               "() => requestAnimationFrame(() => done(1))))")
    page.evaluate(painted, await_promise=True)  # what was scheduled has been drawn
    path = artifacts_dir / name
    path.write_bytes(page.screenshot())
    log.info("screenshot %s", path)
    return path


def _assert_clean(page: Page, stack: Stack, expected: tuple[tuple[int, str], ...] = ()) -> None:
    """No script error, and every request to the archive answered below 400 but the
    ``expected`` ones (status, path)."""
    assert not page.errors(), page.errors()
    failed = [(status, url) for status, url in page.responses()
              if url.startswith(stack.url) and status >= 400
              and (status, url[len(stack.url):].split("?")[0]) not in expected]
    assert not failed, failed


def _changes(page: Page, stack: Stack) -> list[tuple[str, str, str | None]]:
    """(method, path, X-CSRF-Token) of every request that changes something, sent by the page
    to the API since it was opened (the sign-in itself needs no token)."""
    out = []
    for event in page.events:
        if event.get("method") != "Network.requestWillBeSent":
            continue
        request = event["params"]["request"]
        url, method = str(request["url"]), str(request["method"])
        if method in ("GET", "HEAD", "OPTIONS") or not url.startswith(f"{stack.url}/api/"):
            continue
        headers = {k.lower(): str(v) for k, v in request.get("headers", {}).items()}
        out.append((method, url[len(stack.url):].split("?")[0], headers.get("x-csrf-token")))
    return out


def _assert_csrf(page: Page, stack: Stack, cookie: str, count: int) -> None:
    """The page sent ``count`` changes, each with the CSRF token of the session ``cookie``."""
    me = requests.get(f"{stack.url}/api/auth/me", cookies={"archive_session": cookie}, timeout=10)
    token = me.json()["csrfToken"]
    changes = _changes(page, stack)
    assert len(changes) == count and token, changes
    assert all(sent == token for _, _, sent in changes), (changes, token)


def _nav(page: Page) -> list[str]:
    """The menu's pages (their paths)."""
    return list(page.evaluate("[...document.querySelectorAll('[data-nav]')]"
                              ".map(e => e.getAttribute('data-nav'))"))


def _log_in(page: Page, username: str, password: str) -> None:
    """Type the credentials into the login page (already open) and press its button."""
    _type(page, "input[data-test=login-username]", username, "the username field")
    _type(page, "input[data-test=login-password]", password, "the password field")
    _click(page, "[data-test=login-submit]", "the 登录 button")


def _session_cookie(page: Page, stack: Stack) -> str | None:
    cookies = page.call("Network.getCookies", urls=[stack.url])["cookies"]
    values = [c["value"] for c in cookies if c["name"] == "archive_session"]
    return str(values[0]) if values else None


def _fetch(page: Page, href: str) -> tuple[int, dict[str, str], bytes]:
    """What the browser gets for ``href`` (with its cookie): status, headers, body."""
    script = f"""fetch({json.dumps(href)}).then(async r => {{
        const bytes = new Uint8Array(await r.arrayBuffer()); let text = '';
        for (const b of bytes) text += String.fromCharCode(b);
        return [r.status, Object.fromEntries(r.headers.entries()), btoa(text)]; }})"""
    status, headers, body = page.evaluate(script, await_promise=True)
    return int(status), dict(headers), base64.b64decode(body)


def _user(stack: Stack) -> dict[str, Any]:
    """The user the console made (test_create_a_user_with_a_grant), as the API has it."""
    found = [u for u in stack.http.get(f"{stack.url}/api/users", timeout=10).json()
             if u["username"] == USERNAME]
    assert found, f"{USERNAME} does not exist: test_create_a_user_with_a_grant made it"
    user: dict[str, Any] = stack.http.get(f"{stack.url}/api/users/{found[0]['id']}",
                                          timeout=10).json()
    return user


def _api_login(stack: Stack, username: str, password: str) -> requests.Response:
    return requests.post(f"{stack.url}/api/auth/login", timeout=30,
                         json={"username": username, "password": password})


def _shown_time(value: str) -> str:
    """An API instant as the console shows it in Chinese, in the browser's zone."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))
    return moment.strftime("%Y/%m/%d %H:%M:%S")


# --- 1. logging in ---------------------------------------------------------------------------


def test_login_in_chinese(fresh: Page, stack: Stack, artifacts_dir: Path) -> None:
    page = fresh
    page.open(f"{stack.url}/ui/")
    _wait_path(page, "/ui/login")
    assert _query(page, "next") == "/ui/services"  # and back there after the login
    text = _wait_text(page, "登录", "请使用您的归档账号登录。", "用户名", "密码")
    assert "Sign in" not in text and _nav(page) == []
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    _screenshot(page, artifacts_dir, "console-security-login-zh.png")

    _log_in(page, ADMIN_USERNAME, "Wrong-Password-1")
    _wait(page, "!!document.querySelector('[data-test=login-error]')", "the login error")
    error = str(page.evaluate("document.querySelector('[data-test=login-error]').innerText"))
    # The API's own words in Chinese (it does not say whether the user exists), the refusal's
    # kind in the console's language, not the HTTP phrase "Unauthorized".
    assert "登录失败" in error and "用户名或密码错误" in error and "身份验证失败" in error, error
    assert "wrong username" not in error and "Unauthorized" not in error, error
    assert page.evaluate("document.querySelector('input[data-test=login-password]').value") == ""
    _screenshot(page, artifacts_dir, "console-security-login-wrong-zh.png")

    _type(page, "input[data-test=login-password]", ADMIN_PASSWORD, "the password field")
    _click(page, "[data-test=login-submit]", "the 登录 button")
    _wait_path(page, "/ui/services")
    _wait_text(page, "服务与健康状态", ADMIN_DISPLAY_NAME, "退出登录")
    assert page.evaluate("document.querySelector('[data-test=user-name]').innerText") \
        == ADMIN_DISPLAY_NAME
    assert {"/services", "/users", "/roles", "/org-units", "/api-keys", "/audit"} <= set(_nav(page))
    assert _session_cookie(page, stack)
    _screenshot(page, artifacts_dir, "console-security-console-zh.png")
    # Before the login: /api/auth/me said "who?" and the wrong password was refused.
    _assert_clean(page, stack, expected=((401, "/api/auth/me"), (401, "/api/auth/login")))


# --- 2. a user and a grant ---------------------------------------------------------------------


def test_create_a_user_with_a_grant(admin: Page, stack: Stack, hospital: dict[str, Any],
                                    artifacts_dir: Path) -> None:
    page = admin
    page.open(f"{stack.url}/ui/users")
    _rows(page, "users", "the users table")
    _wait_text(page, "用户", "登录控制台和阅片器的人员及其授权。", "新建用户", ADMIN_USERNAME)

    _click(page, "[data-test=user-create]", "the 新建用户 button")
    _wait_text(page, "再次输入密码", "首次登录时须修改密码")
    _type(page, "input[data-test=new-username]", USERNAME, "the username field")
    _type(page, "input[data-test=new-display-name]", DISPLAY_NAME, "the name field")
    _type(page, "input[data-test=new-password]", PASSWORD, "the password field")
    _type(page, "input[data-test=new-password-again]", PASSWORD, "the second password field")
    _screenshot(page, artifacts_dir, "console-security-user-create-zh.png")
    _click(page, "[data-test=user-create-submit]", "the 保存 button")

    # Made: the grants dialog opens for the new user.
    _wait_text(page, f"{USERNAME} 的授权", "没有授权：该用户登录后什么也看不到。")
    _click(page, "[data-test=grant-add]", "the 添加授权 button")
    _choose(page, "[data-test=grant-role]", "临床医生", "the role")
    _choose(page, "[data-test=grant-unit]", f"区域影像中心 / {HOSPITAL}", "the unit")
    _screenshot(page, artifacts_dir, "console-security-user-grants-zh.png")
    _click(page, "[data-test=grants-save]", "the grants' 保存 button")
    _wait_text(page, f"已保存 {USERNAME} 的授权")

    user = _user(stack)
    assert user["displayName"] == DISPLAY_NAME
    assert user["grants"] == [{"roleId": "clinician", "unitId": hospital["id"]}], user
    assert user["permissions"] == {hospital["tenant"]: ["view"]}, user
    assert user["mustChangePassword"] is True and user["locked"] is False

    row = _wait(page, f"document.querySelector('.user-{USERNAME}')?.innerText", "the new row")
    assert DISPLAY_NAME in row and "正常" in row and "须修改密码" in row, row
    _screenshot(page, artifacts_dir, "console-security-users-zh.png")
    _assert_clean(page, stack)
    # POST /api/users and PUT …/grants, each with the session's CSRF token (else 403).
    cookie = _session_cookie(page, stack)
    assert cookie
    assert [(m, p) for m, p, _ in _changes(page, stack)] == [
        ("POST", "/api/users"), ("PUT", f"/api/users/{user['id']}/grants")]
    _assert_csrf(page, stack, cookie, 2)


# --- 3. lockout and unlock -------------------------------------------------------------------


def test_lockout_and_unlock(fresh: Page, stack: Stack, artifacts_dir: Path) -> None:
    user = _user(stack)
    answers = [_api_login(stack, USERNAME, f"Not-The-Password-{n}") for n in range(THRESHOLD)]
    assert [a.status_code for a in answers] == [401] * THRESHOLD
    assert [a.json()["code"] for a in answers] == ["login-failed"] * (THRESHOLD - 1) + ["locked"]
    locked = _user(stack)
    assert locked["locked"] is True and locked["failedCount"] == THRESHOLD, locked

    # The user, with the right password now, is told in Chinese until when.
    page = fresh
    page.open(f"{stack.url}/ui/login")
    _log_in(page, USERNAME, PASSWORD)
    _wait(page, "!!document.querySelector('[data-test=login-error]')", "the login error")
    error = str(page.evaluate("document.querySelector('[data-test=login-error]').innerText"))
    assert "账户已被锁定，请于" in error and "后重试" in error and "locked" not in error, error
    # The API says UTC; the page adds the browser's time.
    assert f"即本地时间 {_shown_time(locked['lockedUntil'])} 后可再次登录" in error, error
    _screenshot(page, artifacts_dir, "console-security-login-locked-zh.png")

    page.set_cookie(stack.url, "archive_session", stack.session_cookie())
    page.open(f"{stack.url}/ui/users")
    row_of = f"document.querySelector('.user-{USERNAME}')"
    tag = _wait(page, f"{row_of}?.querySelector('[data-test=user-locked]')?.innerText",
                "the user's lock")
    assert tag == f"锁定至 {_shown_time(locked['lockedUntil'])}", (tag, locked["lockedUntil"])
    cells = _wait(page, f"[...{row_of}.querySelectorAll('td')].map(td => td.innerText.trim())",
                  "the user's row")
    assert cells[3] == str(THRESHOLD), cells  # 失败次数
    _screenshot(page, artifacts_dir, "console-security-user-locked-zh.png")

    _click(page, f".user-{USERNAME} [data-test=unlock]", "the 解锁 button")
    _wait_text(page, f"已解锁 {USERNAME}")
    _wait(page, f"{row_of}?.querySelector('[data-test=user-active]') && "
                f"!{row_of}.querySelector('[data-test=user-locked]')", "the row without the lock")
    assert not page.evaluate(f"!!{row_of}.querySelector('[data-test=unlock]')")
    _screenshot(page, artifacts_dir, "console-security-user-unlocked-zh.png")
    assert _user(stack)["locked"] is False and _user(stack)["failedCount"] == 0

    again = _api_login(stack, USERNAME, PASSWORD)
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == user["id"] and again.json()["mustChangePassword"] is True
    _assert_clean(page, stack)
    cookie = _session_cookie(page, stack)
    assert cookie
    _assert_csrf(page, stack, cookie, 1)  # POST /api/users/{id}/unlock


# --- 4. the audit trail ------------------------------------------------------------------------


def test_audit_page_in_chinese(admin: Page, stack: Stack, artifacts_dir: Path) -> None:
    page = admin
    page.open(f"{stack.url}/ui/audit")
    rows = _rows(page, "audit", "the audit table", count=THRESHOLD + 2)
    _wait_text(page, "审计日志", "导出 CSV", "导出 ATNA (XML)", "校验哈希链")
    # Columns: expand, 时间, 操作 (and what it did), 结果, 操作人 (and kind), 来源 IP, 患者, 租户, 资源.
    events = [(r[2], r[3], r[4]) for r in rows]
    assert ("登录失败", "失败", f"{USERNAME}\n匿名") in events, events
    assert ("账号锁定", "失败", f"{USERNAME}\n用户") in events, events
    assert ("用户管理\n解锁用户", "成功", f"{ADMIN_USERNAME}\n用户") in events, events
    assert ("用户管理\n新建用户", "成功", f"{ADMIN_USERNAME}\n用户") in events, events
    unlock = next(r for r in rows if r[2] == "用户管理\n解锁用户")
    assert re.fullmatch(r"POST /api/users/\d+/unlock", unlock[8]), unlock
    _screenshot(page, artifacts_dir, "console-security-audit-zh.png")

    # The operator filter (typed, then Enter) goes to the URL and to the API.
    _type(page, "input[data-test=audit-operator]", USERNAME, "the operator filter")
    _enter(page)
    _wait(page, f"new URLSearchParams(location.search).get('operator') === {json.dumps(USERNAME)}",
          "the operator in the URL")
    total = stack.http.get(f"{stack.url}/api/audit", params={"operator": USERNAME},
                           timeout=10).json()["total"]
    assert total >= THRESHOLD + 2  # the failures, the lockout, the login after the unlock
    _wait_text(page, f"共 {total} 条")
    mine = _rows(page, "audit", "the operator's rows", count=total)
    assert len(mine) == total and all(r[4].startswith(f"{USERNAME}\n") for r in mine), mine

    # ... and the action filter with it.
    _choose(page, "[data-test=audit-action]", "账号锁定", "the action filter")
    _wait(page, "new URLSearchParams(location.search).get('action') === 'lockout'",
          "the action in the URL")
    _wait_text(page, "共 1 条")
    lockouts = _rows(page, "audit", "the lockout row")
    assert len(lockouts) == 1 and lockouts[0][2:5] == ["账号锁定", "失败", f"{USERNAME}\n用户"]
    assert _query(page, "operator") == USERNAME

    # The hash chain, checked by the API.
    _click(page, "[data-test=audit-verify]", "the 校验哈希链 button")
    verdict = _wait(page, "document.querySelector('[data-test=audit-verify-result]')?.innerText",
                    "the verdict")
    assert page.evaluate("document.querySelector('[data-test=audit-verify-result]').dataset.ok") \
        == "true", verdict
    checked = re.search(r"哈希链完整：已校验 (\d+) 条记录（最新为第 (\d+) 条）", verdict)
    assert checked, verdict
    chain = stack.http.get(f"{stack.url}/api/audit/verify", timeout=10).json()
    assert chain["ok"] and 0 < int(checked.group(1)) <= chain["checked"], (verdict, chain)
    _screenshot(page, artifacts_dir, "console-security-audit-filtered-zh.png")

    # The exports: links with the same filter, downloaded by the browser with its session.
    for link in ("audit-csv", "audit-atna"):
        assert page.evaluate(f"document.querySelector('[data-test={link}]')"
                             ".hasAttribute('download')"), link
    csv_href = str(page.evaluate("document.querySelector('[data-test=audit-csv]').href"))
    atna_href = str(page.evaluate("document.querySelector('[data-test=audit-atna]').href"))
    for href in (csv_href, atna_href):
        assert "operator=%E7%8E%8B%E7%A7%80%E8%8B%B1" in href and "action=lockout" in href, href
    status, headers, body = _fetch(page, csv_href)
    assert status == 200 and headers["content-type"] == "text/csv; charset=utf-8", headers
    assert headers["content-disposition"].startswith("attachment;"), headers
    text = body.decode("utf-8")  # strict: the bytes are UTF-8
    assert text.startswith("\ufeff编号 (ID),"), text[:80]
    lines = text.rstrip("\r\n").split("\r\n")
    assert len(lines) == 2, lines  # the header and the one lockout
    assert f",lockout,账户锁定 lockout,failure,失败 failure,{USERNAME},user," in lines[1], lines[1]

    status, headers, body = _fetch(page, atna_href)
    assert status == 200 and headers["content-type"].startswith("application/xml"), headers
    root = ET.fromstring(body)  # the XML declaration says UTF-8
    messages = root.findall("AuditMessage")
    assert root.tag == "AuditMessages" and len(messages) == 1, body[:400]
    event = messages[0].find("EventIdentification")
    assert event is not None and event.get("EventOutcomeIndicator") == "12"  # locked out
    requestor = messages[0].find("ActiveParticipant[@UserIsRequestor='true']")
    assert requestor is not None and requestor.get("UserID") == USERNAME, ET.tostring(messages[0])
    assert requestor.get("UserName") == USERNAME
    _assert_clean(page, stack)


# --- 5. English --------------------------------------------------------------------------------


def test_the_same_pages_in_english(admin: Page, stack: Stack, artifacts_dir: Path) -> None:
    page = admin
    page.open(f"{stack.url}/ui/users")
    _rows(page, "users", "the users table", count=2)
    _wait_text(page, "新建用户", "失败次数")
    _click(page, '[data-lang="en"]', "the English button")
    text = _wait_text(page, "Users", "New user", "Username", "Name", "State", "Failures",
                      "Last sign-in", "Grants", "Reset password", "Sign out", DISPLAY_NAME)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.evaluate("localStorage.getItem('archive.console.language')") == "en"
    for chinese in ("新建用户", "失败次数", "退出登录", "用户名", "审计"):
        assert chinese not in text, chinese
    _screenshot(page, artifacts_dir, "console-security-users-en.png")

    _click(page, '[data-nav="/audit"]', "the Audit menu item")
    _wait_path(page, "/ui/audit")
    rows = _rows(page, "audit", "the audit table", count=THRESHOLD + 2)
    text = _wait_text(page, "Audit log", "Export CSV", "Export ATNA (XML)", "Verify hash chain",
                      "Any action", "Any outcome")
    actions = {r[2] for r in rows}
    assert {"Failed sign-in", "Lock-out", "User administration\nUser unlocked"} <= actions, actions
    assert f"{USERNAME}\nAnonymous" in {r[4] for r in rows}
    for chinese in ("审计日志", "登录失败", "账号锁定", "用户管理", "匿名"):
        assert chinese not in text, chinese
    _click(page, "[data-test=audit-verify]", "the Verify button")
    _wait_text(page, "Hash chain intact: ")
    _screenshot(page, artifacts_dir, "console-security-audit-en.png")
    _assert_clean(page, stack)

    # The login page too (the choice is remembered: no ?lng= here).
    page.call("Network.clearBrowserCookies")
    page.open(f"{stack.url}/ui/login")
    _log_in(page, USERNAME, "Not-The-Password")
    _wait(page, "!!document.querySelector('[data-test=login-error]')", "the login error")
    text = _wait_text(page, "Sign in with your archive account.", "Username", "Password",
                      "Sign-in failed", "Unauthorized", "wrong username or password")
    assert "登录" not in text and "用户名或密码错误" not in text, text
    _screenshot(page, artifacts_dir, "console-security-login-wrong-en.png")
    # (One more failure of 王秀英: 1 of 3, and the right password resets the count.)


# --- 6. a clinician: password change, no administration, logout ---------------------------------


def test_a_clinician_changes_the_password_sees_no_administration_and_logs_out(
        fresh: Page, stack: Stack, artifacts_dir: Path) -> None:
    page = fresh
    page.open(f"{stack.url}/ui/users")
    _wait_path(page, "/ui/login")
    assert _query(page, "next") == "/ui/users"
    _log_in(page, USERNAME, PASSWORD)

    # First the new password (the account was made with "must change").
    _wait_path(page, "/ui/password")
    _wait_text(page, "修改密码", "请先设置新密码，然后才能继续使用。", "当前密码", "新密码")
    assert _query(page, "next") == "/ui/users"
    assert _nav(page) == []  # nothing else until then
    _type(page, "input[data-test=password-old]", PASSWORD, "the current password")
    _type(page, "input[data-test=password-new]", NEW_PASSWORD, "the new password")
    _type(page, "input[data-test=password-again]", NEW_PASSWORD, "the new password again")
    _screenshot(page, artifacts_dir, "console-security-password-zh.png")
    _click(page, "[data-test=password-submit]", "the 修改密码 button")
    _wait_text(page, "密码已修改；您在其他地方的登录已退出。")
    assert _user(stack)["mustChangePassword"] is False

    # Then ?next=: the users page, which this account may not use. The URL stays, the page
    # says why, and asks the API nothing.
    _wait_path(page, "/ui/users")
    notice = _wait(page, "document.querySelector('[data-test=forbidden]')?.innerText",
                   "the 403 notice")
    assert "没有权限（HTTP 403）" in notice and "打开“用户”页面需要“用户管理”权限。" in notice, notice
    assert f"您的账号 {DISPLAY_NAME} 没有该权限" in notice, notice
    assert not page.evaluate("!!document.querySelector('[data-test=users]')")
    assert _nav(page) == ["/services", "/quarantine"], _nav(page)  # no 用户, 审计 …
    shown = page.evaluate("document.querySelector('[data-test=user-name]').innerText")
    assert shown == DISPLAY_NAME, shown
    _screenshot(page, artifacts_dir, "console-security-forbidden-zh.png")

    cookie = _session_cookie(page, stack)
    assert cookie
    jar = {"archive_session": cookie}
    # The API agrees: the session is valid, the administration routes refuse it.
    assert requests.get(f"{stack.url}/api/auth/me", cookies=jar, timeout=10).json()["name"] \
        == USERNAME
    refused = requests.get(f"{stack.url}/api/users", cookies=jar, timeout=10)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden", refused.text
    assert requests.get(f"{stack.url}/api/audit", cookies=jar, timeout=10).status_code == 403

    page.open(f"{stack.url}/ui/audit")
    notice = _wait(page, "document.querySelector('[data-test=forbidden]')?.innerText",
                   "the 403 notice of the audit page")
    assert "打开“审计”页面需要“查看审计日志”权限。" in notice, notice
    assert not page.evaluate("!!document.querySelector('[data-test=audit]')")
    _click(page, "[data-test=forbidden-home]", "the 返回首页 button")
    _wait_path(page, "/ui/services")
    _wait_text(page, "服务与健康状态")
    _assert_clean(page, stack, expected=((401, "/api/auth/me"),))  # before the login

    # Logging out ends the session: the login page, no cookie, and the old one is refused.
    _click(page, "[data-test=logout]", "the 退出登录 button")
    _wait_path(page, "/ui/login")
    _wait_text(page, "请使用您的归档账号登录。")
    assert _session_cookie(page, stack) is None
    _screenshot(page, artifacts_dir, "console-security-logged-out-zh.png")
    after = requests.get(f"{stack.url}/api/auth/me", cookies=jar, timeout=10)
    assert after.status_code == 401, after.text
    page.open(f"{stack.url}/ui/services")
    _wait_path(page, "/ui/login")
    _assert_clean(page, stack, expected=((401, "/api/auth/me"),))

    # The new password is the one that works now.
    assert _api_login(stack, USERNAME, NEW_PASSWORD).json()["mustChangePassword"] is False
