"""Headless Chromium driven over the Chrome DevTools Protocol (JSON messages on a websocket).

Small on purpose: start Debian's ``/usr/bin/chromium`` with a private profile on a free
DevTools port, attach to its first tab, and send protocol commands (``Page.navigate``,
``Runtime.evaluate`` …), keeping the events that arrive in between. Used by the benchmark's
viewer timing and by the viewer's integration tests (tests/integration/test_viewer.py).

Protocol reference: https://chromedevtools.github.io/devtools-protocol/ (the stable domains
Page, Runtime, Network, Emulation, Storage).
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import requests
import websocket

from testkit.processes import stop_process

CHROMIUM: Final = "/usr/bin/chromium"

#: Headless, no GPU (WebGL runs on SwiftShader, which Chromium no longer falls back to unless
#: asked), and nothing that talks to the outside or runs in the background.
DEFAULT_ARGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
    "--disable-dev-shm-usage",
)


class DevToolsError(RuntimeError):
    """Chromium did not start, or a protocol command failed."""


class Page:
    """One tab. ``call`` sends a command and returns its result; events are kept in ``events``.

    ``keep_events`` bounds ``events`` to the newest ones; ``None`` keeps them all.
    """

    def __init__(self, ws_url: str, timeout: float = 60.0, keep_events: int | None = 2000) -> None:
        self._ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep_events)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        self._ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression (JSON-serialisable), or DevToolsError."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"{expression[:80]!r}: {text}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise DevToolsError(f"navigating to {url}: {result['errorText']}")

    def open(self, url: str) -> None:
        """Forget the events seen so far, then navigate: ``errors`` and ``responses`` are the page's."""
        self.events.clear()
        self.navigate(url)

    def wait_for(self, expression: str, timeout: float, interval: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy and return its value; TimeoutError if not."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except DevToolsError:  # the document is being replaced
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression[:80]!r} still false after {timeout} s")
            time.sleep(interval)

    def text(self) -> str:
        """The text of the page as shown (``document.body.innerText``); "" before there is a body."""
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def set_cookie(self, url: str, name: str, value: str) -> None:
        """A cookie for ``url``'s origin, as the archive's login sets it (HttpOnly, Lax)."""
        self.call("Network.setCookie", url=url, name=name, value=value, httpOnly=True,
                  sameSite="Lax")

    def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def click(self, x: float, y: float) -> None:
        """A left click at (``x``, ``y``) in CSS pixels from the viewport's top left."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def responses(self) -> list[tuple[int, str]]:
        """(status, URL) of every HTTP response seen so far (needs the Network domain enabled)."""
        return [(int(e["params"]["response"]["status"]), str(e["params"]["response"]["url"]))
                for e in self.events if e.get("method") == "Network.responseReceived"]

    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors seen so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails"), ensure_ascii=False)[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(json.dumps(params.get("args"), ensure_ascii=False)[:300])
        return out

    def close(self) -> None:
        self._ws.close()


class Chromium:
    """A headless Chromium with its own profile folder; ``page`` is its first tab.

    Chromium's output goes to ``log_path``; the tab's viewport is ``width`` x ``height``.
    ``network`` also enables the Network domain (for ``Page.responses``); ``keep_events`` is
    passed to the ``Page``.
    """

    def __init__(self, profile: Path, log_path: Path, *, width: int = 1600, height: int = 1000,
                 extra_args: Sequence[str] = (), start_timeout: float = 30.0,
                 network: bool = False, keep_events: int | None = 2000) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [CHROMIUM, *DEFAULT_ARGS, *extra_args, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"],
            stdout=self._log, stderr=self._log, start_new_session=True)
        self.page: Page | None = None
        try:
            port = self._devtools_port(profile / "DevToolsActivePort", start_timeout)
            targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            tabs = [t for t in targets if t.get("type") == "page"]
            if not tabs:
                raise DevToolsError("Chromium has no tab to attach to")
            self.page = Page(tabs[0]["webSocketDebuggerUrl"], keep_events=keep_events)
            self.page.call("Page.enable")
            self.page.call("Runtime.enable")
            if network:
                self.page.call("Network.enable")
            self.page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.stop()
            raise

    def _devtools_port(self, port_file: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevToolsError(f"Chromium exited with {self.process.returncode}")
            try:
                first = port_file.read_text().split()
            except OSError:
                first = []
            if first:
                return int(first[0])
            time.sleep(0.05)
        raise DevToolsError(f"Chromium wrote no DevTools port in {timeout} s")

    @property
    def tab(self) -> Page:
        if self.page is None:
            raise DevToolsError("Chromium is stopped")
        return self.page

    def version(self) -> str:
        return str(self.tab.call("Browser.getVersion").get("product", ""))

    def stop(self) -> None:
        if self.page is not None:
            try:
                self.page.close()
            except (OSError, websocket.WebSocketException):
                pass
            self.page = None
        stop_process(self.process, timeout=10)
        self._log.close()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


@contextmanager
def console_browser(profile: Path, log_path: Path, *, time_zone: str) -> Iterator[Chromium]:
    """The browser of the console's tests: 1400×900, network events kept (every one), the
    clock in ``time_zone``; stopped on exit."""
    browser = Chromium(profile, log_path, width=1400, height=900, network=True, keep_events=None)
    try:
        browser.tab.call("Emulation.setTimezoneOverride", timezoneId=time_zone)
        yield browser
    finally:
        browser.stop()
