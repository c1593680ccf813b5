"""``Archive.Dicom`` security settings and the Orthanc keys the launcher renders from them
(docs/dicom-security.md); what Orthanc then does is in tests/integration/test_dicom_security.py."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from archive_config.errors import ConfigError
from archive_config.settings import DicomSettings, DicomTlsSettings, parse_settings
from archive_door import credential, orthanc_config
from archive_door.orthanc_config import dicom_keys
from testkit.orthanc_process import render_config


def settings_with(dicom: Mapping[str, Any]) -> DicomSettings:
    return parse_settings({"Archive": {"StateDirectory": "/tmp/x", "Viewer": {"Enabled": False},
                                       "Dicom": dict(dicom)}}, "archive.json").dicom


def pem_files(folder: Path) -> dict[str, str]:
    names = {"Certificate": "archive.crt", "PrivateKey": "archive.key",
             "TrustedCertificates": "ca.crt"}
    for name in names.values():
        (folder / name).write_text("-----BEGIN CERTIFICATE-----\n")
    return {key: str(folder / name) for key, name in names.items()}


def test_defaults_are_open_for_store_and_find_but_closed_for_retrieve() -> None:
    dicom = settings_with({})
    assert dicom.refuse_unknown_ae is False and dicom.tls == DicomTlsSettings()
    assert dicom_keys(dicom) == {
        "DicomModalitiesInDatabase": True, "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False, "DicomCheckModalityHost": True,
        "DicomTlsEnabled": False}


def test_refusing_unknown_aes_closes_every_service_echo_included() -> None:
    keys = dicom_keys(settings_with({"RefuseUnknownAe": True}))
    for name in ("Echo", "Store", "Find", "FindWorklist", "Get", "Move"):
        assert keys[f"DicomAlwaysAllow{name}"] is False, name
    assert keys["DicomCheckModalityHost"] is True


def test_tls_renders_its_files(tmp_path: Path) -> None:
    files = pem_files(tmp_path)
    keys = dicom_keys(settings_with({"Tls": {"Enabled": True, **files,
                                             "RemoteCertificateRequired": False}}))
    assert keys["DicomTlsEnabled"] is True
    assert keys["DicomTlsCertificate"] == files["Certificate"]
    assert keys["DicomTlsPrivateKey"] == files["PrivateKey"]
    assert keys["DicomTlsTrustedCertificates"] == files["TrustedCertificates"]
    assert keys["DicomTlsRemoteCertificateRequired"] is False


@pytest.mark.parametrize("missing", ["Certificate", "PrivateKey", "TrustedCertificates"])
def test_tls_needs_its_three_files(tmp_path: Path, missing: str) -> None:
    files = pem_files(tmp_path)
    del files[missing]
    with pytest.raises(ConfigError) as caught:
        settings_with({"Tls": {"Enabled": True, **files}})
    assert caught.value.key == f"Archive.Dicom.Tls.{missing}"
    assert "required" in caught.value.problem


def test_tls_files_must_exist(tmp_path: Path) -> None:
    files = {**pem_files(tmp_path), "PrivateKey": str(tmp_path / "nowhere.key")}
    with pytest.raises(ConfigError) as caught:
        settings_with({"Tls": {"Enabled": True, **files}})
    assert caught.value.key == "Archive.Dicom.Tls.PrivateKey"
    assert caught.value.source == "archive.json" and "not a file" in str(caught.value)


def test_tls_off_needs_no_files() -> None:
    assert settings_with({"Tls": {"Enabled": False}}).tls.enabled is False


def render(tmp_path: Path, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    source = render_config(tmp_path / "config", overrides)
    made = credential.ensure(tmp_path / "credential.json")
    files = orthanc_config.render(source, {"ARCHIVE_DATA": str(tmp_path),
                                           "ARCHIVE_HOME": str(tmp_path)}, made)
    merged: dict[str, Any] = {}
    for content in files.values():
        assert not set(content) & set(merged), "a key in two files: Orthanc would refuse it"
        merged.update(content)
    return merged


def test_the_launcher_enforces_the_keys_in_the_file_that_has_them(tmp_path: Path) -> None:
    rendered = render(tmp_path, {"archive.json": {"Archive": {"Dicom": {
        "RefuseUnknownAe": True}}}})
    assert rendered["DicomAlwaysAllowStore"] is False  # config/orthanc.json says true
    assert rendered["DicomAlwaysAllowEcho"] is False
    assert rendered["DicomAlwaysAllowGet"] is False
    assert rendered["DicomCheckModalityHost"] is True
    assert rendered["DicomModalitiesInDatabase"] is True


def test_the_shipped_configuration_keeps_store_and_find_open(tmp_path: Path) -> None:
    rendered = render(tmp_path, {})
    assert rendered["DicomAlwaysAllowStore"] is True and rendered["DicomAlwaysAllowFind"] is True
    assert rendered["DicomAlwaysAllowMove"] is False and rendered["DicomTlsEnabled"] is False


def test_modalities_in_the_files_are_refused(tmp_path: Path) -> None:
    overrides = {"orthanc.json": {"DicomModalities": {"pacs": ["PACS", "10.0.0.1", 104]}}}
    with pytest.raises(ValueError, match="/api/modalities"):
        render(tmp_path, overrides)
