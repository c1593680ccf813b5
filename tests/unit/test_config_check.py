from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archive_config.config_check import check, expand, main
from archive_config.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


def test_shipped_config_passes_with_placeholders_expanded(config: Path) -> None:
    settings = check(config, {"ARCHIVE_DATA": "/srv/data", "ARCHIVE_HOME": "/opt/archive"})
    assert settings.state_directory == "/srv/data/state"
    assert settings.viewer.app_config == "/opt/archive/ohif-config/app-config.js"


def test_expand_handles_nested_values() -> None:
    assert expand({"a": ["${X}/y", 3, {"b": "${MISSING}z"}]}, {"X": "x"}) == {"a": ["x/y", 3, {"b": "z"}]}


def test_syntax_error_names_file_and_line(config: Path) -> None:
    path = config / "archive.json"
    path.write_text(path.read_text().replace('"Tenant" : "default",', '"Tenant" : "default"'))
    with pytest.raises(ValueError, match=r"archive\.json:\d+:\d+"):
        check(config, {})


def test_section_defined_twice_is_refused(config: Path) -> None:
    (config / "zz-extra.json").write_text('{"HttpPort": 9000}')
    with pytest.raises(ConfigError, match="HttpPort.*defined twice"):
        check(config, {})


def test_bad_value_names_the_section_file(config: Path) -> None:
    path = config / "archive.json"
    path.write_text(path.read_text().replace('"Tenant" : "default"', '"Tenant" : "Bad Tenant"'))
    with pytest.raises(ConfigError) as info:
        check(config, {"ARCHIVE_DATA": "/d"})
    assert str(info.value).startswith(f"{path}: configuration key 'Archive.Tenant'")


def test_cli_exit_codes(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(config)]) == 0
    (config / "archive.json").write_text('{"Archive": {"StateDirectory": "/s", "Tenant": 1}}')
    assert main([str(config)]) == 1
    assert "Archive.Tenant" in capsys.readouterr().err
    assert main([]) == 2
