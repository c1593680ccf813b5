"""The admin console's own unit tests (``console/tests/*.spec.ts``, vitest), run where
``scripts/install-console`` builds the console: its copy of the sources beside the locked
``node_modules`` (``.cache/console/build``), so the checkout needs no ``npm ci``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / ".cache" / "console" / "build"


def test_console_unit_tests_pass() -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is missing: scripts/setup installs Debian's nodejs and npm")
    built = subprocess.run([str(REPO / "scripts" / "install-console")], capture_output=True,
                           text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert (BUILD / "tests").is_dir(), "install-console copied no console/tests"
    ran = subprocess.run(["npm", "run", "--silent", "test", "--", "--reporter=dot"], cwd=BUILD,
                         capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout, ran.stdout[-2000:]
