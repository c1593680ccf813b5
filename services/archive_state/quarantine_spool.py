"""The quarantine spool: refused instances as files, written inside Orthanc, indexed later.

The ingest gate runs on Orthanc's ingest path, so writing an entry must be fast, need nothing
but the standard library and survive a crash at any point (docs/decisions.md, "Quarantine:
spool, then index"). Layout of ``<Archive.StateDirectory>/quarantine/``:

- ``<sha>.dcm``: the bytes exactly as received; ``<sha>`` is the SHA-256 hex of those bytes.
- ``<sha>.json``: the metadata (:data:`FIELDS`).
- ``.<sha>.<pid>.<random>.tmp``: a write in progress, or the leftover of a crash.

**An entry exists iff its .json exists.** :func:`write` puts the .dcm in place first (temp file,
fsync, rename), then the .json the same way, then fsyncs the folder; a crash leaves either
nothing, a temp file, or a .dcm without .json (an *orphan*), never a .json without its bytes.
Same bytes, same id: writing an id whose .json exists is a no-op returning that id, so a sender
that repeats an instance is quarantined once. Every file is mode 0600 (they hold PHI).

The importer (:mod:`archive_state.quarantine`) removes temp files and adopts orphans once they
are older than :data:`GRACE_SECONDS` (a write in progress is never that slow).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "FIELDS", "GRACE_SECONDS", "IDENTIFIERS", "TRANSPORTS", "SpoolEntry", "data_path",
    "data_ids", "entry_id", "folder_of", "is_entry_id", "list_entries", "orphans", "read_entry",
    "remove_entry", "stale_temp_files", "write", "write_private_file",
]

SUBFOLDER = "quarantine"
TRANSPORTS = ("dimse", "stow", "rest", "router", "reingest", "unknown")
#: Best-effort identifiers read from the refused bytes; each may be null.
IDENTIFIERS = ("sop_class_uid", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
               "patient_id", "patient_name", "transfer_syntax")
FIELDS = ("id", "received_at", "tenant", "transport", "remote", "reasons", "size",
          *IDENTIFIERS, "parent")
#: Temp files and orphans younger than this may belong to a write in progress.
GRACE_SECONDS = 300.0
_ID = re.compile(r"[0-9a-f]{64}")
_MODE = 0o600


@dataclass(frozen=True)
class SpoolEntry:
    """One complete entry: its metadata as stored (every key of :data:`FIELDS`)."""

    id: str
    meta: dict[str, Any]


def folder_of(state_directory: str | Path) -> Path:
    """``<StateDirectory>/quarantine``."""
    return Path(state_directory) / SUBFOLDER


def entry_id(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def is_entry_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


def data_path(folder: Path, entry: str) -> Path:
    return folder / f"{_checked(entry)}.dcm"


def _meta_path(folder: Path, entry: str) -> Path:
    return folder / f"{_checked(entry)}.json"


def _checked(entry: str) -> str:
    if not is_entry_id(entry):
        raise ValueError(f"not a quarantine entry id: {entry!r}")
    return entry


def _reason(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("code"), str):
        raise ValueError(f"a reason must be an object with a 'code' string: {value!r}")
    tag = value.get("tag")
    return {"code": value["code"], "tag": tag if isinstance(tag, str) else None,
            "message": str(value.get("message") or "")}


def _metadata(entry: str, size: int, meta: Mapping[str, Any]) -> dict[str, Any]:
    transport = meta.get("transport") or "unknown"
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}: {transport!r}")
    received = meta.get("received_at") or datetime.now(timezone.utc).isoformat(
        timespec="milliseconds")
    remote = meta.get("remote") or {}
    if not isinstance(remote, Mapping):
        raise ValueError("remote must be an object (calling_aet, called_aet, ip)")
    parent = meta.get("parent")
    if parent is not None:
        _checked(parent)
    out: dict[str, Any] = {
        "id": entry, "received_at": str(received), "tenant": str(meta.get("tenant") or "default"),
        "transport": transport,
        "remote": {str(k): (None if v is None else str(v)) for k, v in remote.items()},
        "reasons": [_reason(r) for r in meta.get("reasons") or ()], "size": size,
    }
    for key in IDENTIFIERS:
        value = meta.get(key)
        out[key] = None if value is None else str(value)
    out["parent"] = parent
    return out


def _write_file(folder: Path, final: Path, content: bytes | memoryview, entry: str) -> None:
    temp = folder / f".{entry}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MODE)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temp, final)


def write_private_file(folder: Path, name: str, content: bytes | memoryview) -> None:
    """Write ``folder/name`` whole or not at all (temp file, fsync, rename), mode 0600, the
    folder made 0700 if missing: how every file of the spool is written, and the gate's record
    of a repair beside it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_file(folder, folder / name, content, name)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(folder: Path, data: bytes | memoryview, meta: Mapping[str, Any]) -> str:
    """Quarantine ``data`` with ``meta`` (tenant, transport, remote, reasons, identifiers,
    parent, optionally received_at; ``id`` and ``size`` are computed); returns the entry's id.

    A no-op when the entry exists already (same bytes). Raises ``ValueError`` for metadata
    that does not fit :data:`FIELDS` and ``OSError`` when the disk refuses; in both cases no
    entry exists afterwards, so the caller must not report the instance as kept.
    """
    entry = entry_id(data)
    final_meta = _meta_path(folder, entry)
    if final_meta.exists():
        return entry
    document = json.dumps(_metadata(entry, len(data), meta), ensure_ascii=False, indent=1)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_file(folder, data_path(folder, entry), data, entry)
    _write_file(folder, final_meta, document.encode("utf-8"), entry)
    _fsync_folder(folder)
    return entry


def read_entry(folder: Path, entry: str) -> SpoolEntry | None:
    """The entry's metadata, or None when it does not exist (no .json)."""
    try:
        raw = _meta_path(folder, entry).read_bytes()
    except FileNotFoundError:
        return None
    meta = json.loads(raw.decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("id") != entry:
        raise ValueError(f"quarantine entry {entry}: metadata does not name this entry")
    return SpoolEntry(entry, meta)


def _ids(folder: Path, suffix: str) -> Iterator[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if name.endswith(suffix) and is_entry_id(name[: -len(suffix)]):
            yield name[: -len(suffix)]


def list_entries(folder: Path) -> list[str]:
    """Ids of the complete entries (those with a .json), sorted."""
    return sorted(_ids(folder, ".json"))


def data_ids(folder: Path) -> set[str]:
    """Ids that have their bytes (.dcm) in place, complete entries or not."""
    return set(_ids(folder, ".dcm"))


def _older_than(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.stat().st_mtime >= seconds
    except FileNotFoundError:
        return False


def stale_temp_files(folder: Path, *, grace: float = GRACE_SECONDS,
                     now: float | None = None) -> list[Path]:
    """Temp files older than ``grace`` seconds: what a crashed write left."""
    moment = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(folder / n for n in names if n.startswith(".") and n.endswith(".tmp")
                  and _older_than(folder / n, grace, moment))


def orphans(folder: Path, *, grace: float = GRACE_SECONDS, now: float | None = None) -> list[str]:
    """Ids whose .dcm is in place without its .json for at least ``grace`` seconds (a crash
    between the two renames)."""
    moment = time.time() if now is None else now
    complete = set(_ids(folder, ".json"))
    return sorted(i for i in _ids(folder, ".dcm")
                  if i not in complete and _older_than(data_path(folder, i), grace, moment))


def remove_entry(folder: Path, entry: str) -> None:
    """Delete an entry: the .json first (the entry ends at once), then the bytes."""
    _meta_path(folder, entry).unlink(missing_ok=True)
    data_path(folder, entry).unlink(missing_ok=True)
    if folder.is_dir():
        _fsync_folder(folder)
