"""What the console's browser tests share: the build they serve and how they read its tables."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testkit.orthanc_process import REPO

#: The rows of a table marked ``data-test=NAME``: each row's cells' text (a JS function).
TABLE_ROWS_JS = """
(name => [...document.querySelectorAll(`[data-test="${name}"] .el-table__body tr`)]
  .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim())))
"""


def built_console() -> Path:
    """The console built from the committed sources (instant when scripts/setup built it)."""
    done = subprocess.run([str(REPO / "scripts" / "install-console")], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail("scripts/install-console failed (it needs the npm registry the first time):\n"
                    + done.stdout[-2000:] + done.stderr[-2000:])
    build = REPO / ".cache" / "console" / "dist"
    assert (build / "index.html").is_file()
    return build
