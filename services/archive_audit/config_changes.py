"""Configuration changes made by editing the JSON files, recorded when the archive starts.

A sysadmin changes the archive by editing its configuration folder and restarting it; nothing
else sees that edit. At every start the launcher compares the merged configuration (what Orthanc
and the services will run with) against the snapshot it kept at the previous start
(``<StateDirectory>/audit/config-snapshot.json``, mode 0600) and records one ``config-change``
row naming every key added, removed or changed, with the value before and after. Values that
are secrets (passwords, tokens, the password inside a database URL) are shown only as a short
hash, so the trail says *that* they changed without holding them (nor does the snapshot). The
first start records the number of keys it found. Pure except :func:`audit_start`, which reads and writes the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from .events import AuditEvent, Recorder

SNAPSHOT: Final = Path("audit") / "config-snapshot.json"
#: Most changed keys one row lists; the rest are counted.
MAX_LISTED: Final = 200
_SECRET_KEY = re.compile(r"password|secret|token|credential|registeredusers|apikey",
                         re.IGNORECASE)


@dataclass(frozen=True)
class Change:
    """One key: ``before`` None when added, ``after`` None when removed."""

    key: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after}


def _hidden(value: Any) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()
    return f"<secret sha256:{digest[:12]}>"


def _url_without_password(value: str) -> str:
    """``scheme://user:pw@host/db`` with the password hidden; other strings unchanged."""
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    netloc = parts.netloc.replace(f":{password}@", f":{_hidden(password)}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def shown(key: str, value: Any) -> Any:
    """``value`` as the audit row may hold it."""
    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]) or _SECRET_KEY.search(key.split(".", 1)[0]):
        return _hidden(value)
    if isinstance(value, str):
        return _url_without_password(value)
    return value


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key → leaf value; objects are walked, lists are leaves (compared whole)."""
    flat: dict[str, Any] = {}
    for name, value in config.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{key}."))
        else:
            flat[key] = value
    return flat


def snapshot_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept and compared: every key flattened, as JSON values, secrets hidden (so the
    snapshot file holds no secret either)."""
    flat = {key: shown(key, value) for key, value in flatten(config).items()}
    normalised: dict[str, Any] = json.loads(json.dumps(flat, default=str))
    return normalised


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """The keys of two snapshots that differ, sorted."""
    return [Change(key, before.get(key), after.get(key))
            for key in sorted(set(before) | set(after))
            if key not in before or key not in after or before[key] != after[key]]


def event_of(changes: list[Change], *, tenant: str, actor: str, source: str,
             first: bool, keys: int) -> AuditEvent | None:
    """The row for one start; None when nothing changed."""
    if first:
        detail: dict[str, Any] = {"object": "configuration", "operation": "first-start",
                                  "keys": keys, "source": source}
    elif not changes:
        return None
    else:
        detail = {"object": "configuration", "operation": "edited", "source": source,
                  "changed": len(changes),
                  "changes": [c.to_json() for c in changes[:MAX_LISTED]]}
    return AuditEvent(action="config-change", outcome="success", actor=actor,
                      actor_kind="system", tenant=tenant, resource=source, detail=detail)


def _read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: every key is reported as added, and the snapshot is rewritten
    return loaded if isinstance(loaded, dict) else {}


def _write_snapshot(path: Path, flat: Mapping[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(flat, out, ensure_ascii=False, sort_keys=True, default=str)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def audit_start(config: Mapping[str, Any], state_directory: Path, recorder: Recorder, *,
                tenant: str, actor: str, source: str) -> AuditEvent | None:
    """Compare ``config`` with the last start's snapshot, record the difference, keep the new
    snapshot (after the row is recorded: a failed record is tried again at the next start).
    ``source``: the configuration folder, for the row."""
    path = state_directory / SNAPSHOT
    flat = snapshot_of(config)
    previous = _read_snapshot(path)
    event = event_of(differences(previous or {}, flat), tenant=tenant, actor=actor,
                     source=source, first=previous is None, keys=len(flat))
    if event is not None:
        recorder.record(event)
    if event is not None or previous is None:
        _write_snapshot(path, flat)
    return event
