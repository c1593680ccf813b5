from __future__ import annotations

from pathlib import Path

import pytest

from archive_config import jsonc
from archive_config.errors import ConfigError
from archive_config.settings import ArchiveSettings, describe, json_key, parse_settings

REPO = Path(__file__).resolve().parents[2]


def minimal(**archive: object) -> dict[str, object]:
    section: dict[str, object] = {"StateDirectory": "/var/lib/archive", "Viewer": {"Directory": "/x"}}
    section.update(archive)
    return {"Archive": section}


def test_defaults_fill_in_optional_keys() -> None:
    settings = parse_settings(minimal())
    assert settings == ArchiveSettings(
        state_directory="/var/lib/archive",
        viewer=settings.viewer,
    )
    assert settings.tenant == "default"
    assert settings.role == "archive"
    assert settings.viewer.root == "/ohif/"
    assert settings.viewer.default_language == "zh"


def test_settings_are_frozen() -> None:
    settings = parse_settings(minimal())
    with pytest.raises(AttributeError):
        settings.tenant = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("config", "key", "fragment"),
    [
        ({}, "Archive", "section is missing"),
        ({"Archive": []}, "Archive", "expected an object"),
        (minimal(Tenant=42), "Archive.Tenant", "expected string, got 42"),
        (minimal(Tenant="Bad Name"), "Archive.Tenant", "1-32 characters"),
        (minimal(Role="router"), "Archive.Role", "expected 'archive'"),
        (minimal(Colour="blue"), "Archive.Colour", "unknown key"),
        ({"Archive": {"Tenant": "a"}}, "Archive.StateDirectory", "required value is missing"),
        (minimal(StateDirectory=" "), "Archive.StateDirectory", "must not be empty"),
        (minimal(Viewer={"Directory": "/x", "Root": "ohif"}), "Archive.Viewer.Root", "starts and ends"),
        (minimal(Viewer={"Directory": "/x", "Enabled": "yes"}), "Archive.Viewer.Enabled", "true/false"),
        (minimal(Viewer={"Directory": "/x", "DefaultLanguage": "fr"}), "Archive.Viewer.DefaultLanguage", "'zh' or 'en'"),
        (minimal(Viewer={"Enabled": True}), "Archive.Viewer.Directory", "required when the viewer"),
        (minimal(Viewer={"Directory": "/x", "Rot": "/a/"}), "Archive.Viewer.Rot", "known keys"),
    ],
)
def test_bad_values_name_the_key_and_the_file(config: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(config, source="/etc/archive/archive.json")
    assert info.value.key == key
    assert fragment in str(info.value)
    assert str(info.value).startswith("/etc/archive/archive.json: ")


def test_bool_is_not_accepted_as_integer_or_string() -> None:
    with pytest.raises(ConfigError, match="Archive.Tenant"):
        parse_settings(minimal(Tenant=True))


def test_viewer_may_be_disabled_without_a_build() -> None:
    settings = parse_settings({"Archive": {"StateDirectory": "/s", "Viewer": {"Enabled": False}}})
    assert settings.viewer.enabled is False


def test_json_key_is_pascal_case() -> None:
    assert json_key("state_directory") == "StateDirectory"
    assert json_key("tenant") == "Tenant"


def test_shipped_configuration_parses() -> None:
    configuration: dict[str, object] = {}
    for path in jsonc.config_files(REPO / "config"):
        configuration.update(jsonc.load_file(path))
    settings = parse_settings(configuration)
    assert settings.tenant == "default"
    assert settings.viewer.enabled


def test_every_key_is_documented() -> None:
    """docs/configuration.md must describe every key the parser knows."""
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for key, _type, _default, help_text in describe():
        assert f"`{key}`" in doc, f"{key} is not documented in docs/configuration.md"
        assert help_text, f"{key} has no help text"
