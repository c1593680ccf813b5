"""The door's JSON access log → view and download audit rows, aggregated.

nginx writes one JSON object a line (``log_format … escape=json``) with ``time`` (ISO 8601),
``user``, ``session``, ``tenant``, ``area``, ``method``, ``uri``, ``status``, ``bytes``,
``remote`` (and optionally ``kind``: the credential's kind). A viewer asks for hundreds of
frames a minute, so requests are counted, not recorded one by one: one audit row per (user,
session, tenant, client address, study, view|download, outcome) and 5-minute window (aligned to
the clock: 10:00, 10:05 …), with ``detail`` = count, bytes, first and last time, statuses.

- **Which requests.** Area ``dicomweb-view`` is a view, ``dicomweb-download`` a download (the
  door sets the area per location). A line without an area is classified from its URI: WADO-URI
  asking for ``application/dicom`` and WADO-RS of whole studies, series or instances are
  downloads, the rest of DICOMweb views. Uploads (STOW-RS) are audited by the API itself; the
  viewer's static files and Orthanc Explorer (Orthanc ids, not UIDs) are not counted here.
- **Which study.** The DICOMweb path ``…/studies/<uid>/…`` or WADO-URI's ``studyUID=``; a search
  without one (QIDO-RS over all studies) is a view of no study, kept apart per window.
- **Outcome.** 401 and 403 are ``denied``, any other status from 400 ``failure``: refused and
  failed requests are aggregated the same way, in their own rows.

Pure: the tailer (:mod:`archive_audit.door_tail`) reads the file and stores the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .events import ActorKind, AuditEvent

WINDOW = timedelta(minutes=5)
VIEW_AREA = "dicomweb-view"
DOWNLOAD_AREA = "dicomweb-download"
#: Where the door serves DICOMweb and WADO-URI (a line without an area is judged by its path).
DICOMWEB_PREFIXES = ("/dicom-web/", "/wado")
_STUDY_PATH = re.compile(r"/studies/(?P<uid>[^/?#]+)")
#: WADO-RS retrievals of whole objects end at the object (``/studies/x``, ``…/series/y``,
#: ``…/instances/z``); metadata, frames, rendered, thumbnails, bulk data go further.
_RETRIEVE = re.compile(r"/studies/[^/]+(?:/series/[^/]+(?:/instances/[^/]+)?)?/?$")
_UID = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")
_EMPTY = ("", "-")


@dataclass(frozen=True)
class AccessLine:
    """One request the door answered."""

    at: datetime
    method: str
    uri: str
    status: int
    bytes: int = 0
    user: str | None = None
    session: str | None = None
    tenant: str | None = None
    area: str | None = None
    remote: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Patient:
    patient_id: str | None
    patient_name: str | None


#: ``study UID -> its patient`` (None: no such study any more).
PatientResolver = Callable[[str], Patient | None]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in _EMPTY else text


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def parse_line(text: str) -> AccessLine | None:
    """One log line, or None for anything that is not a request line of ours."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    at = _time(data.get("time"))
    uri, method = _text(data.get("uri")), _text(data.get("method"))
    status = _int(data.get("status"))
    if at is None or uri is None or method is None or status <= 0:
        return None
    return AccessLine(at=at, method=method.upper(), uri=uri, status=status,
                      bytes=max(_int(data.get("bytes")), 0), user=_text(data.get("user")),
                      session=_text(data.get("session")), tenant=_text(data.get("tenant")),
                      area=_text(data.get("area")), remote=_text(data.get("remote")),
                      kind=_text(data.get("kind")))


def _uid(text: str) -> str | None:
    value = unquote(text).strip()
    return value if len(value) <= 64 and _UID.match(value) else None


def study_uid(uri: str) -> str | None:
    """The Study Instance UID a request is for: DICOMweb ``/studies/<uid>`` or WADO-URI
    ``studyUID=``; None when it names none (or something that is not a UID)."""
    target = urlsplit(uri)
    found = _STUDY_PATH.search(target.path)
    if found is not None:
        return _uid(found["uid"])
    for key, value in parse_qsl(target.query, keep_blank_values=True):
        if key.lower() == "studyuid":
            return _uid(value)
    return None


def action_of(line: AccessLine) -> str | None:
    """``view``, ``download`` or None (not counted), from the area or else the URI."""
    if line.area == VIEW_AREA:
        return "view"
    if line.area == DOWNLOAD_AREA:
        return "download"
    if line.area is not None or line.method not in ("GET", "HEAD"):
        return None
    target = urlsplit(line.uri)
    if not target.path.startswith(DICOMWEB_PREFIXES):
        return None
    query = {k.lower(): v for k, v in parse_qsl(target.query, keep_blank_values=True)}
    if "requesttype" in query:  # WADO-URI
        content = query.get("contenttype", "").lower()
        return "download" if content.startswith("application/dicom") else "view"
    return "download" if _RETRIEVE.search(target.path) else "view"


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    return "failure" if status >= 400 else "success"


def window_of(at: datetime) -> datetime:
    """The start of the 5-minute window ``at`` falls in (UTC, aligned to the hour)."""
    at = at.astimezone(timezone.utc)
    seconds = int(WINDOW.total_seconds())
    epoch = int(at.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, timezone.utc)


@dataclass(frozen=True)
class Key:
    window: datetime
    action: str
    outcome: str
    user: str | None
    session: str | None
    tenant: str | None
    remote: str | None
    study_uid: str | None


@dataclass(frozen=True)
class Aggregate:
    """The requests of one key so far."""

    key: Key
    count: int
    bytes: int
    first: datetime
    last: datetime
    kind: str | None = None
    resource: str | None = None
    statuses: Mapping[str, int] = field(default_factory=dict)

    def add(self, line: AccessLine) -> "Aggregate":
        statuses = dict(self.statuses)
        statuses[str(line.status)] = statuses.get(str(line.status), 0) + 1
        return replace(self, count=self.count + 1, bytes=self.bytes + line.bytes,
                       first=min(self.first, line.at), last=max(self.last, line.at),
                       statuses=statuses, kind=self.kind or line.kind)

    @property
    def closes_at(self) -> datetime:
        return self.key.window + WINDOW

    def to_json(self) -> dict[str, Any]:
        k = self.key
        return {"window": k.window.isoformat(), "action": k.action, "outcome": k.outcome,
                "user": k.user, "session": k.session, "tenant": k.tenant, "remote": k.remote,
                "study_uid": k.study_uid, "count": self.count, "bytes": self.bytes,
                "first": self.first.isoformat(), "last": self.last.isoformat(),
                "kind": self.kind, "resource": self.resource, "statuses": dict(self.statuses)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Aggregate":
        key = Key(datetime.fromisoformat(data["window"]), data["action"], data["outcome"],
                  data.get("user"), data.get("session"), data.get("tenant"), data.get("remote"),
                  data.get("study_uid"))
        return cls(key, int(data["count"]), int(data["bytes"]),
                   datetime.fromisoformat(data["first"]), datetime.fromisoformat(data["last"]),
                   data.get("kind"), data.get("resource"),
                   {str(k): int(v) for k, v in (data.get("statuses") or {}).items()})


def key_of(line: AccessLine) -> Key | None:
    action = action_of(line)
    if action is None:
        return None
    return Key(window_of(line.at), action, outcome_of(line.status), line.user, line.session,
               line.tenant, line.remote, study_uid(line.uri))


def aggregate(lines: Iterable[AccessLine],
              pending: Mapping[Key, Aggregate] | None = None) -> dict[Key, Aggregate]:
    """``pending`` with ``lines`` counted in (a new mapping; the old one is left as it is)."""
    out = dict(pending or {})
    for line in lines:
        key = key_of(line)
        if key is None:
            continue
        current = out.get(key)
        if current is None:
            out[key] = Aggregate(key, 0, 0, line.at, line.at, resource=line.uri[:4000]).add(line)
        else:
            out[key] = current.add(line)
    return out


def split_closed(pending: Mapping[Key, Aggregate], now: datetime, grace: timedelta,
                 keep_at_most: int) -> tuple[list[Aggregate], dict[Key, Aggregate]]:
    """The aggregates whose window ended ``grace`` ago (oldest first) and the rest. More than
    ``keep_at_most`` open ones close early, oldest first, so the stored state stays small."""
    ordered = sorted(pending.values(), key=lambda a: (a.key.window, a.first))
    ready = [a for a in ordered if a.closes_at + grace <= now]
    rest = [a for a in ordered if a.closes_at + grace > now]
    if len(rest) > keep_at_most:
        cut = len(rest) - keep_at_most
        ready, rest = ready + rest[:cut], rest[cut:]
    return ready, {a.key: a for a in rest}


def event_of(item: Aggregate, patient: Patient | None) -> AuditEvent:
    """The audit row for one closed aggregate."""
    k = item.key
    actor_kind: ActorKind = "anonymous" if k.user is None else (
        "api-key" if item.kind == "api-key" else "user")
    detail: dict[str, Any] = {
        "source": "door-log", "count": item.count, "bytes": item.bytes,
        "first": item.first.isoformat(), "last": item.last.isoformat(),
        "window": k.window.isoformat(), "statuses": dict(item.statuses)}
    if k.study_uid is not None and patient is None:
        detail["patient_unresolved"] = True
    return AuditEvent(
        action="view" if k.action == "view" else "download",
        outcome="denied" if k.outcome == "denied" else (
            "failure" if k.outcome == "failure" else "success"),
        actor=k.user or "anonymous", actor_kind=actor_kind, source_ip=k.remote,
        tenant=k.tenant, patient_id=patient.patient_id if patient else None,
        patient_name=patient.patient_name if patient else None, study_uid=k.study_uid,
        resource=item.resource, session=k.session, detail=detail, at=item.first)
