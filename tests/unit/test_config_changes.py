"""Edits of the configuration files become one ``config-change`` row at the next start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archive_audit import config_changes
from archive_audit.config_changes import audit_start, differences, flatten, shown, snapshot_of
from archive_audit.events import AuditEvent, Recorder

CONFIG: dict[str, Any] = {
    "Name": "中心医院影像归档",
    "DicomPort": 4242,
    "RegisteredUsers": {"orthanc": "s3cret-pw"},
    "DicomModalities": {"CT1": ["CT1", "10.0.0.5", 104]},
    "Archive": {"Tenant": "default", "Door": {"HttpPort": 8042, "AuthCacheSeconds": 5},
                "Database": {"Control": "postgresql+psycopg://archive:pg-pw@db/control",
                             "State": ""}},
}


class Events:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


def start(config: dict[str, Any], state: Path, trail: Recorder) -> AuditEvent | None:
    return audit_start(config, state, trail, tenant="default", actor="root",
                       source="/etc/archive")


def edited(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(CONFIG))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return config


def test_flatten_walks_objects_and_keeps_lists_whole() -> None:
    flat = flatten(CONFIG)
    assert flat["Archive.Door.HttpPort"] == 8042
    assert flat["DicomModalities.CT1"] == ["CT1", "10.0.0.5", 104]
    assert "Archive.Door" not in flat


def test_secrets_are_hashed_everywhere_they_are_kept() -> None:
    snapshot = snapshot_of(CONFIG)
    assert snapshot["RegisteredUsers.orthanc"].startswith("<secret sha256:")
    assert "pg-pw" not in snapshot["Archive.Database.Control"]
    assert snapshot["Archive.Database.Control"].startswith("postgresql+psycopg://archive:<secret")
    assert snapshot["Name"] == "中心医院影像归档"
    assert shown("Archive.Door.HttpPort", 8042) == 8042
    assert shown("Archive.Api.Token", "abc") != shown("Archive.Api.Token", "abd")


def test_differences_name_added_removed_and_changed_keys() -> None:
    before = snapshot_of(CONFIG)
    after = snapshot_of(edited(Archive__Door__HttpPort=8080, DicomModalities=None,
                               Archive__Jobs={"Workers": 2}))
    found = [(c.key, c.before, c.after) for c in differences(before, after)]
    assert found == [("Archive.Door.HttpPort", 8042, 8080), ("Archive.Jobs.Workers", None, 2),
                     ("DicomModalities.CT1", ["CT1", "10.0.0.5", 104], None)]


def test_the_first_start_counts_keys_then_only_edits_are_recorded(tmp_path: Path) -> None:
    trail = Events()
    first = start(CONFIG, tmp_path, trail)
    assert first is not None and first.detail["operation"] == "first-start"
    assert first.detail["keys"] == len(flatten(CONFIG))
    snapshot = tmp_path / config_changes.SNAPSHOT
    assert snapshot.stat().st_mode & 0o077 == 0
    assert "s3cret-pw" not in snapshot.read_text(encoding="utf-8")
    assert start(CONFIG, tmp_path, trail) is None  # restarted unchanged: no row
    changed = start(edited(RegisteredUsers={"orthanc": "new-pw"}, Name="县医院"), tmp_path, trail)
    assert changed is not None and len(trail.events) == 2
    assert (changed.action, changed.actor, changed.actor_kind, changed.tenant) == (
        "config-change", "root", "system", "default")
    assert changed.detail["changed"] == 2
    keys = {c["key"]: c for c in changed.detail["changes"]}
    assert keys["Name"]["before"] == "中心医院影像归档" and keys["Name"]["after"] == "县医院"
    password = keys["RegisteredUsers.orthanc"]
    assert password["before"] != password["after"] and "new-pw" not in json.dumps(password)


def test_a_failed_record_is_tried_again_at_the_next_start(tmp_path: Path) -> None:
    class Broken:
        def record(self, event: AuditEvent) -> None:
            raise OSError("database unreachable")

    start(CONFIG, tmp_path, Events())
    try:
        start(edited(DicomPort=11112), tmp_path, Broken())
    except OSError:
        pass
    trail = Events()
    again = start(edited(DicomPort=11112), tmp_path, trail)
    assert again is not None and again.detail["changes"] == [
        {"key": "DicomPort", "before": 4242, "after": 11112}]


def test_a_long_list_of_changes_is_capped_but_counted(tmp_path: Path) -> None:
    start({"Many": {"K0000": 0}}, tmp_path, Events())
    many: dict[str, Any] = {"Many": {f"K{i:04}": i for i in range(config_changes.MAX_LISTED + 50)}}
    row = start(many, tmp_path, Events())
    assert row is not None and row.detail["changed"] == config_changes.MAX_LISTED + 49
    assert len(row.detail["changes"]) == config_changes.MAX_LISTED
