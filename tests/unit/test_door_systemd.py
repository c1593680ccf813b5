"""systemd units for production: the same commands as supervisord's programs, always restarted,
checked by ``systemd-analyze verify`` (the unit parser of systemd itself)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archive_config.config_check import load
from archive_door.launcher import environment
from archive_door.layout import REPO, Executables, Layout
from archive_door.programs import programs
from archive_door.systemd import units, write_units
from testkit.orthanc_process import render_config


def _parse(text: str) -> configparser.RawConfigParser:
    # systemd allows repeated keys (Environment=); keep the last of each for these checks.
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return render_config(tmp_path / "config", {"archive.json": {"Archive": {"Jobs": {"Workers": 2}}}})


def test_units_run_the_supervisord_programs_and_always_restart(config: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    written = units(config, data, user="archive", base_env={"PATH": os.environ["PATH"]})
    assert set(written) == {"archive.target", "archive-render.service", "archive-orthanc.service",
                            "archive-api.service", "archive-worker@.service", "archive-door.service"}
    env = environment(data.resolve(), None, {"PATH": os.environ["PATH"]})
    settings = load(config, env).archive
    layout = Layout(home=REPO, data=data.resolve(), state=Path(settings.state_directory))
    expected = {p.name: p for p in programs(settings, layout, Executables.from_environment(env))}
    for unit, program in (("archive-orthanc.service", "orthanc"), ("archive-api.service", "api"),
                          ("archive-door.service", "door")):
        service = _parse(written[unit])["Service"]
        command = shlex.split(service["ExecStart"].replace("$$", "$").replace("%%", "%"))
        assert tuple(command) == expected[program].command, unit
        assert service["Restart"] == "always"
        assert service["User"] == "archive"
        assert service["UMask"] == "0077", unit  # codecs' temporary files are patient data
        parsed = _parse(written[unit])["Unit"]
        assert "network-online.target" in parsed["After"] and "archive-render.service" in parsed["After"]
        assert parsed["Requires"] == "archive-render.service"
        assert _parse(written[unit])["Install"]["WantedBy"] == "archive.target"
    orthanc_env = [line for line in written["archive-orthanc.service"].splitlines()
                   if line.startswith("Environment=")]
    assert 'Environment="TCP_NODELAY=1"' in orthanc_env
    assert any("LD_PRELOAD=" in line and "libarchive-charls-route.so" in line for line in orthanc_env)
    assert f'Environment="TMPDIR={layout.orthanc_tmp}"' in orthanc_env
    worker = _parse(written["archive-worker@.service"])["Service"]["ExecStart"]
    assert worker.endswith('"--name" "worker-%i"')
    target = _parse(written["archive.target"])
    assert target["Install"]["WantedBy"] == "multi-user.target"
    wants = target["Unit"]["Wants"].split()
    assert wants[0] == "archive-render.service"
    assert {"archive-worker@1.service", "archive-worker@2.service"} <= set(wants)
    assert "archive-worker@3.service" not in wants
    render = _parse(written["archive-render.service"])["Service"]
    assert render["Type"] == "oneshot" and render["RemainAfterExit"] == "yes"
    assert '"archive_door" "render"' in render["ExecStart"]


def test_cli_writes_units_that_systemd_accepts(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "units"
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    result = subprocess.run([sys.executable, "-m", "archive_door", "systemd", "--config", str(config),
                             "--data", str(tmp_path / "data"), "--out", str(out), "--user", user],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    files = sorted(out.iterdir())
    assert [Path(line).name for line in result.stdout.split()] == [
        "archive-render.service", "archive-orthanc.service", "archive-api.service",
        "archive-worker@.service", "archive-door.service", "archive.target"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: units checked by the test above only")
    verified = subprocess.run([analyze, "verify", "--man=no", *map(str, files)],
                              capture_output=True, text=True, timeout=120, cwd=out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "error" not in verified.stderr.lower(), verified.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path, config: Path) -> None:
    """The verify step above can fail: a unit with a relative ExecStart is refused."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    [written] = write_units(config, tmp_path / "data", tmp_path / "u")[2:3]
    written.write_text(written.read_text().replace(f'ExecStart="{sys.executable}"', 'ExecStart="relative/python"'))
    verified = subprocess.run([analyze, "verify", "--man=no", str(written)], capture_output=True,
                              text=True, timeout=120)
    assert verified.returncode != 0
