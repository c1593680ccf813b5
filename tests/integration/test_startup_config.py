"""A bad configuration stops Orthanc at start-up with a message naming the key and the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.archive_process import ArchiveProcess, StartupFailed

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("archive_section", "key", "fragment"),
    [
        ({"Tenant": 42}, "Archive.Tenant", "expected string, got 42"),
        ({"Colour": "blue"}, "Archive.Colour", "unknown key"),
        ({"Viewer": {"Root": "ohif"}}, "Archive.Viewer.Root", "starts and ends with '/'"),
    ],
)
def test_bad_archive_section_stops_startup(
    tmp_path: Path, archive_section: dict[str, Any], key: str, fragment: str
) -> None:
    proc = ArchiveProcess(tmp_path, overrides={"archive.json": {"Archive": archive_section}})
    with pytest.raises(StartupFailed) as info:
        proc.start(timeout=30)
    assert info.value.returncode not in (None, 0)
    config_file = tmp_path / "config" / "archive.json"
    expected = f"{config_file}: configuration key '{key}': "
    assert expected in info.value.log, info.value.log[-2000:]
    assert fragment in info.value.log


def test_missing_required_value_stops_startup(tmp_path: Path) -> None:
    proc = ArchiveProcess(tmp_path)
    config = tmp_path / "config"
    proc.overrides = {"archive.json": {"Archive": {"StateDirectory": ""}}}
    with pytest.raises(StartupFailed) as info:
        proc.start(timeout=30)
    assert f"{config / 'archive.json'}: configuration key 'Archive.StateDirectory': must not be empty" in info.value.log
