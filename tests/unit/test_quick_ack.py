"""The quick-ACK shim (orthanc-plugins/native/quick_ack.c) touches TCP sockets and nothing else.

The shim is compiled here from its source with the flags ``scripts/setup`` uses, and
``quick_ack_harness.py`` reads from TCP sockets (IPv4 and IPv6, with each interposed call), a
UNIX socket pair, a pipe and a file in a Python process it is preloaded into. The kernel is the
witness for TCP: the harness puts the socket in delayed-ACK mode (``TCP_QUICKACK = 0``) before
each read and asks ``getsockopt(TCP_QUICKACK)`` right after it. For the other descriptors, which
have no TCP options to ask about, the shim's own count of ``TCP_QUICKACK`` calls must not move.
Also here: how the launcher, the test kit and ``/api/health`` decide about the shim.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive_api import quick_ack
from archive_config.settings import parse_settings
from archive_door.layout import Executables
from archive_door.programs import orthanc_preload
from testkit.orthanc_process import render_config, suppresses_delayed_ack

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "orthanc-plugins" / "native" / "quick_ack.c"
HARNESS = Path(__file__).with_name("quick_ack_harness.py")


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.fail("no C compiler: scripts/setup installs gcc")
    out = tmp_path_factory.mktemp("shim") / "libarchive-quick-ack.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    str(out), str(SOURCE), "-ldl"], check=True, capture_output=True)
    return out


def harness(tmp_path: Path, preload: Path | None, **env: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ARCHIVE_QUICKACK")}
    environment.update(env)
    if preload is not None:
        environment["LD_PRELOAD"] = str(preload)
    result = subprocess.run([sys.executable, str(HARNESS), str(tmp_path / "data.bin")],
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "cannot be preloaded" not in result.stderr, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_tcp_reads_get_quickack_with_every_call(shim: Path, tmp_path: Path) -> None:
    report = harness(tmp_path, shim)
    assert report["enabled"] == 1
    assert {"AF_INET/read", "AF_INET/recv", "AF_INET/recvfrom", "AF_INET/recvmsg"} <= set(report["tcp"])
    for case, seen in report["tcp"].items():
        assert seen["quick"] == seen["rounds"], f"{case}: {seen}"
        assert seen["sets"] == seen["rounds"], f"{case}: one TCP_QUICKACK per read, got {seen}"


def test_unix_sockets_pipes_and_files_are_untouched(shim: Path, tmp_path: Path) -> None:
    report = harness(tmp_path, shim)
    assert report["other"] == {"unix/read": 0, "unix/recv": 0, "unix/recvfrom": 0,
                               "unix/recvmsg": 0, "pipe": 0, "file": 0}


def test_without_the_shim_the_kernel_keeps_delaying(tmp_path: Path) -> None:
    """The witness can tell: without the shim, reads leave delayed-ACK mode on (most rounds)."""
    report = harness(tmp_path, None)
    assert report["enabled"] is None and report["other"] is None
    for case, seen in report["tcp"].items():
        assert seen["quick"] <= seen["rounds"] * 3 // 4, f"{case}: {seen}"


@pytest.mark.parametrize("off", ["0", "false", "OFF"])
def test_archive_quickack_off_makes_the_shim_a_pass_through(shim: Path, tmp_path: Path,
                                                            off: str) -> None:
    report = harness(tmp_path, shim, ARCHIVE_QUICKACK=off)
    assert report["enabled"] == 0
    for case, seen in report["tcp"].items():
        assert seen["sets"] == 0, case
        assert seen["quick"] <= seen["rounds"] * 3 // 4, f"{case}: {seen}"


# --- who preloads it ---------------------------------------------------------------------


def _settings(**dicom: bool) -> Any:
    return parse_settings({"Archive": {"StateDirectory": "/s", "Viewer": {"Directory": "/v"},
                                       **({"Dicom": {"SuppressDelayedAck": dicom["on"]}}
                                          if dicom else {})}})


def test_the_launcher_preloads_it_by_default_and_not_when_switched_off() -> None:
    executables = Executables(python="python", orthanc="Orthanc", nginx="nginx", plugin_venv="v",
                              thread_stack_shim=Path("/lib/ts.so"), quick_ack_shim=Path("/lib/qa.so"),
                              charls_route_shim=Path("/lib/cr.so"))
    assert _settings().dicom.suppress_delayed_ack is True
    assert orthanc_preload(_settings(), executables) == {
        "LD_PRELOAD": "/lib/ts.so /lib/cr.so /lib/qa.so", "ARCHIVE_QUICKACK": "1"}
    assert orthanc_preload(_settings(on=False), executables) == {
        "LD_PRELOAD": "/lib/ts.so /lib/cr.so", "ARCHIVE_QUICKACK": "0"}


def test_the_test_kit_preloads_it_for_an_archive_only(tmp_path: Path) -> None:
    assert suppresses_delayed_ack(render_config(tmp_path / "archive", {}))
    off = {"archive.json": {"Archive": {"Dicom": {"SuppressDelayedAck": False}}}}
    assert not suppresses_delayed_ack(render_config(tmp_path / "off", off))
    from testkit.orthanc_process import DROP
    assert not suppresses_delayed_ack(render_config(tmp_path / "vanilla", {"archive.json": DROP}))


# --- what health sees in a process ---------------------------------------------------------


@pytest.fixture()
def sleeper(request: pytest.FixtureRequest, shim: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real process started like Orthanc is: ``(preloaded, ARCHIVE_QUICKACK)``."""
    preload, setting = request.param
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ARCHIVE_QUICKACK")}
    if preload:
        env["LD_PRELOAD"] = str(shim)
    if setting is not None:
        env["ARCHIVE_QUICKACK"] = setting
    process = subprocess.Popen(["sleep", "60"], env=env)
    try:
        deadline = time.monotonic() + 10
        # Until the loader has mapped the libraries (or exec'd sleep at all).
        while time.monotonic() < deadline:
            maps = Path(f"/proc/{process.pid}/maps").read_text()
            if "libc.so" in maps:
                break
            time.sleep(0.01)
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(("sleeper", "state"), [((True, "1"), "active"), ((True, None), "active"),
                                                ((True, "0"), "inert"), ((False, "1"), "not-loaded")],
                         indirect=["sleeper"])
def test_health_reads_the_shims_state_from_proc(sleeper: subprocess.Popen[bytes], state: str) -> None:
    assert quick_ack.shim_state(sleeper.pid) == state


def test_health_lists_the_feature_only_when_in_effect() -> None:
    assert quick_ack.shim_state(None) == "unknown"
    assert quick_ack.shim_state(2**22 + 12345) == "unknown"  # beyond pid_max: no such process
    assert quick_ack.in_effect(True, "active") and quick_ack.in_effect(False, "active")
    assert not quick_ack.in_effect(True, "not-loaded") and not quick_ack.in_effect(True, "inert")
    assert quick_ack.in_effect(True, "unknown") and not quick_ack.in_effect(False, "unknown")
    assert quick_ack.describe(True, "not-loaded") == "quick-ACK asked for but not-loaded"
    assert quick_ack.describe(False, "not-loaded") == "quick-ACK not-loaded"
