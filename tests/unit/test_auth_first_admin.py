"""``archive_tools create-admin``: the first administrator, from the configuration's control
database (migrated on the way)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from archive_auth.first_admin import main
from archive_auth.passwords import Passwords
from archive_auth.service import AuthService
from archive_config.security_settings import SecuritySettings
from archive_state.db import make_engine


def config_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "orthanc.json").write_text(json.dumps({"Archive": {
        "StateDirectory": "${ARCHIVE_DATA}/state", "Viewer": {"Enabled": False}}}))
    (tmp_path / "data" / "state").mkdir(parents=True)
    return folder


def run(tmp_path: Path, password: str, *extra: str) -> int:
    return main(["--username", "Admin", "--display-name", "管理员", "--password-stdin",
                 "--config", str(tmp_path / "config"), "--data", str(tmp_path / "data"),
                 *extra], stdin=io.StringIO(password + "\n"), env={})


def service(tmp_path: Path) -> AuthService:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'state' / 'control.sqlite'}")
    return AuthService.build(engine, SecuritySettings())


def test_creates_the_region_and_an_admin_then_refuses_to_repeat(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_folder(tmp_path)
    assert run(tmp_path, "Gateway-Pass-1x") == 0
    auth = service(tmp_path)
    user = auth.users.find("admin")
    region = auth.org.region()
    assert user is not None and region is not None
    assert user.display_name == "管理员" and not user.must_change_password
    assert auth.users.permissions(user.id) == {"*": frozenset(
        ("view", "download", "upload", "delete", "restore", "purge", "share", "configure",
         "audit-read", "user-admin", "admin"))}
    assert auth.accounts.login("admin", "Gateway-Pass-1x").user is not None
    capsys.readouterr()
    assert run(tmp_path, "Second-Gate-2y") == 1
    assert "--reset-password" in capsys.readouterr().err
    assert auth.accounts.login("admin", "Second-Gate-2y").user is None


def test_reset_password_replaces_it_and_unlocks(tmp_path: Path) -> None:
    config_folder(tmp_path)
    assert run(tmp_path, "Gateway-Pass-1x") == 0
    auth = service(tmp_path)
    for _ in range(5):
        auth.accounts.login("admin", "forgotten")
    assert auth.accounts.login("admin", "Gateway-Pass-1x").failure == "locked"
    assert run(tmp_path, "Second-Gate-2y", "--reset-password") == 0
    assert auth.accounts.login("admin", "Second-Gate-2y").user is not None
    assert len(auth.org.list()) == 1  # the region was not made twice


def test_a_weak_password_is_refused_with_the_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_folder(tmp_path)
    assert run(tmp_path, "short") == 1
    err = capsys.readouterr().err
    assert "至少" in err and "at least 10 characters" in err
    assert service(tmp_path).users.find("admin") is None


def test_the_stored_hash_uses_the_production_costs(tmp_path: Path) -> None:
    config_folder(tmp_path)
    assert run(tmp_path, "Gateway-Pass-1x") == 0
    record = service(tmp_path).users.login_record("admin")
    assert record is not None and not Passwords().needs_rehash(record.password_hash)
