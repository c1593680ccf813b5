"""QIDO-RS with decoded query values, answered by Orthanc's DICOMweb plugin: the pure planning.

Why this exists: Orthanc 1.10.1 (Debian bookworm) and 1.12.x (trixie) hand the query arguments
of a GET to plugins still percent-encoded, and the DICOMweb plugin matches them as they are:
``PatientName=%E5%BC%A0*`` (how every browser and ``dicomweb-client`` sends ``张*``) finds
nothing, ``%2A`` is not a wildcard, ``limit=%31`` is a bad request; raw UTF-8 bytes in a URL are
refused by Orthanc's HTTP server (400). So a client cannot reach a Chinese name through
``/dicom-web`` at all. The search must stay the DICOMweb plugin's (its matching, its DICOM JSON,
PS3.18 §10.6); this module only decides how to *ask* it:

* **Direct**: every value, once decoded, is made of characters that mean themselves in a raw
  query string (letters, digits and ``* ? ^ - . _ , : ~``). The decoded values are sent to
  ``/dicom-web`` unencoded, which Orthanc reads as they are.
* **Resolved**: some value is not (Chinese characters, a space, ``=`` …). The same search is run
  by Orthanc's ``POST /tools/find`` with a JSON (UTF-8) body, exactly the request the DICOMweb
  plugin itself makes internally (same ``Query`` constraints after the plugin's own list rewrite,
  ``CaseSensitive`` from ``DicomWeb.QidoCaseSensitive``), which yields the matching UIDs; the
  page (limit/offset) is cut from them here. ``Limit``/``Since`` are not sent: trixie's Orthanc
  1.12.7 applies ``Limit`` before matching tags that are not main DICOM tags of the level (three
  studies of 张* paged by 2 gave 1, 2, 0) and refuses ``Since`` with ``CaseSensitive``.
  DICOMweb is then asked for the page's UIDs (UID list matching, PS3.18 §8.3.4.1) together with the other parameters, and answers the DICOM JSON.
  Attributes whose constraint was dropped from that second request are added to
  ``includefield``, since DICOMweb returns every attribute that was a query key.

Nothing here does I/O: :mod:`archive_api.dicomweb` runs the plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

from pydicom.datadict import tag_for_keyword

Level = Literal["studies", "series", "instances"]

#: Query keys of QIDO-RS that are not attribute filters (PS3.18 §8.3.4).
LIMIT, OFFSET, FUZZY, INCLUDE = "limit", "offset", "fuzzymatching", "includefield"
CONTROL_KEYS: Final = frozenset({LIMIT, OFFSET, FUZZY, INCLUDE})

#: The level's own UID attribute: what a resolved search hands back to DICOMweb.
LEVEL_UID: Final[Mapping[Level, str]] = {
    "studies": "StudyInstanceUID",
    "series": "SeriesInstanceUID",
    "instances": "SOPInstanceUID",
}
FIND_LEVEL: Final[Mapping[Level, str]] = {"studies": "Study", "series": "Series",
                                          "instances": "Instance"}

#: Characters a raw query value may hold and still reach DICOMweb as themselves.
_RAW_SAFE = re.compile(r"[A-Za-z0-9*?^._,:~-]*")
#: What DICOMweb 1.7 takes for an attribute: a keyword (PatientName) or 8 hex digits (00100010).
_KEYWORD = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")

#: UIDs per DICOMweb request when handing a resolved page back: about 6.5 KB of URL, well under
#: what Orthanc's HTTP server accepts in a request line.
UID_BATCH: Final = 100


class QueryError(ValueError):
    """The query cannot be a QIDO-RS search; ``parameter`` names the offending key."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"query parameter {parameter!r}: {problem}")
        self.parameter = parameter
        self.problem = problem


@dataclass(frozen=True)
class SearchPath:
    """A QIDO-RS search resource (PS3.18 §10.6.1): a level, maybe below a study or a series."""

    level: Level
    study: str | None = None
    series: str | None = None

    def __post_init__(self) -> None:
        for name, uid in (("study", self.study), ("series", self.series)):
            if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
                raise QueryError(name, "is not a DICOM UID")
        if self.series is not None and (self.study is None or self.level != "instances"):
            raise QueryError("series", "only /studies/{study}/series/{series}/instances exists")
        if self.study is not None and self.level == "studies":
            raise QueryError("study", "a study holds series and instances, not studies")

    def below_root(self) -> str:
        """The path below the DICOMweb root: ``/studies/1.2/series``."""
        parts = []
        if self.study is not None:
            parts.append(f"/studies/{self.study}")
        if self.series is not None:
            parts.append(f"/series/{self.series}")
        return "".join(parts) + f"/{self.level}"

    def path_constraints(self) -> dict[str, str]:
        """The constraints DICOMweb adds from the path itself."""
        out: dict[str, str] = {}
        if self.study is not None:
            out["StudyInstanceUID"] = self.study
        if self.series is not None:
            out["SeriesInstanceUID"] = self.series
        return out


@dataclass(frozen=True)
class QidoQuery:
    """A decoded QIDO-RS query: attribute filters and the search's own parameters."""

    filters: tuple[tuple[str, str], ...] = ()
    #: keys that are neither attributes nor QIDO parameters (a cache buster such as ``_``):
    #: ignored, and named in the answer's ``Warning`` header (:func:`ignored_warning`)
    ignored: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    offset: int = 0
    fuzzy: str | None = None
    includefield: tuple[str, ...] = ()

    def needs_resolution(self) -> bool:
        """True when some filter cannot reach DICOMweb as a raw value."""
        return any(not is_raw_safe(value) for _, value in self.filters)


def is_raw_safe(value: str) -> bool:
    return _RAW_SAFE.fullmatch(value) is not None


def is_attribute(key: str) -> bool:
    return _KEYWORD.fullmatch(key) is not None or _HEX_TAG.fullmatch(key) is not None


def is_known_keyword(key: str) -> bool:
    """A keyword of the DICOM data dictionary (pydicom's copy of PS3.6)."""
    return tag_for_keyword(key) is not None


def decode_query_string(raw: bytes | str) -> list[tuple[str, str]]:
    """``a=%E5%BC%A0*&b=x+y`` → ``[("a", "张*"), ("b", "x y")]``; invalid UTF-8 is an error.

    ``+`` is a space, as HTML forms and ``requests``/``dicomweb-client`` encode one.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise QueryError("(query)", f"is not valid percent-encoded UTF-8 ({exc.reason})") from None


def _unsigned(key: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise QueryError(key, "must be a non-negative integer")
    return int(value)


def parse_query(pairs: Sequence[tuple[str, str]]) -> QidoQuery:
    """Sort decoded pairs into filters and parameters, refusing what DICOMweb would choke on.

    A repeated ``includefield`` is merged (DICOMweb sees one value per key); an attribute given
    twice is an error (PS3.18 §8.3.4.1 allows each once).
    """
    filters: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    include: list[str] = []
    limit: int | None = None
    offset = 0
    fuzzy: str | None = None
    seen: set[str] = set()
    for key, value in pairs:
        if any(c in key or c in value for c in "\x00\r\n"):
            raise QueryError(key, "holds a control character")
        if key == INCLUDE:
            for item in value.split(","):
                if not (item == "all" or is_attribute(item)):
                    raise QueryError(key, f"{item!r} is neither 'all' nor an attribute")
                include.append(item)
            continue
        if key in CONTROL_KEYS or key in filters:
            if key in seen:
                raise QueryError(key, "is given more than once")
        seen.add(key)
        if key == LIMIT:
            limit = _unsigned(key, value)
        elif key == OFFSET:
            offset = _unsigned(key, value)
        elif key == FUZZY:
            if value not in ("true", "false"):
                raise QueryError(key, "must be 'true' or 'false'")
            fuzzy = value
        elif is_attribute(key):
            # A keyword-shaped key outside the dictionary is a typo ("PatientNme"): DICOMweb
            # would ignore it and answer every study, so it is refused rather than matched.
            if _HEX_TAG.fullmatch(key) is None and not is_known_keyword(key):
                raise QueryError(key, "is not a DICOM attribute keyword (PS3.6) nor a tag "
                                      "such as 00100010")
            filters[key] = value
        else:
            ignored.append((key, value))
    return QidoQuery(tuple(filters.items()), tuple(ignored), limit, offset, fuzzy,
                     tuple(dict.fromkeys(include)))


def refused_by_orthanc(query: QidoQuery) -> QueryError:
    """What to answer when Orthanc refuses a search as malformed (400) although it passed
    :func:`parse_query`: a value Orthanc cannot match, such as a wildcard or words in a date or
    a UID. Orthanc does not say which, so the error names every attribute the search gave."""
    names = ", ".join(key for key, _ in query.filters) or "(query)"
    return QueryError(names, "Orthanc cannot match this value: dates are YYYYMMDD or a range "
                             "(YYYYMMDD-YYYYMMDD), UIDs a comma-separated list of UIDs, and "
                             "wildcards (* ?) are for text attributes only")


def ignored_warning(query: QidoQuery) -> str | None:
    """The ``Warning`` header (RFC 7234 ``299``) naming the parameters the search ignored."""
    if not query.ignored:
        return None
    names = ", ".join(sorted({k.encode("ascii", "backslashreplace").decode() for k, _ in query.ignored}))
    return f'299 archive "query parameters ignored (not DICOM attributes): {names}"'


def _raw_query(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


def _control_pairs(query: QidoQuery, *, paging: bool,
                   extra_include: Sequence[str] = ()) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if paging and query.limit is not None:
        pairs.append((LIMIT, str(query.limit)))
    if paging and query.offset:
        pairs.append((OFFSET, str(query.offset)))
    if query.fuzzy is not None:
        pairs.append((FUZZY, query.fuzzy))
    include = list(query.includefield)
    if "all" not in include:
        include += [k for k in extra_include if k not in include]
    if include:
        pairs.append((INCLUDE, "all" if "all" in include else ",".join(include)))
    return pairs


def find_constraint(value: str) -> str:
    """The constraint DICOMweb derives from a QIDO value before calling ``/tools/find``.

    DICOMweb 1.7 drops backslashes and turns commas (QIDO's list separator) into DICOM's
    backslash (PS3.4 C.2.2.2.1 list of values); the resolved search must use the same text.
    """
    return value.replace("\\", "").replace(",", "\\")


def _find_key(key: str) -> str:
    return f"{key[:4]},{key[4:]}" if _HEX_TAG.fullmatch(key) else key


@dataclass(frozen=True)
class DirectPlan:
    """Ask DICOMweb once, with this raw (already safe) query string."""

    path: str
    query: str


@dataclass(frozen=True)
class ResolvedPlan:
    """Resolve the page with ``/tools/find``, then ask DICOMweb for its UIDs in batches."""

    path: str
    find: dict[str, Any]
    uid_key: str
    dicomweb_pairs: tuple[tuple[str, str], ...] = field(default=())
    limit: int | None = None
    offset: int = 0

    def page(self, uids: Sequence[str]) -> list[str]:
        """The client's page (QIDO-RS ``offset``/``limit``) of every matching UID."""
        end = None if self.limit is None else self.offset + self.limit
        return list(uids[self.offset:end])

    def dicomweb_queries(self, uids: Sequence[str], batch: int = UID_BATCH) -> Iterator[str]:
        """One raw query string per batch of UIDs, in the order ``/tools/find`` gave them."""
        for start in range(0, len(uids), batch):
            chunk = uids[start:start + batch]
            yield _raw_query([*self.dicomweb_pairs, (self.uid_key, ",".join(chunk))])


Plan = DirectPlan | ResolvedPlan


def plan(search: SearchPath, query: QidoQuery, *, case_sensitive: bool | None = None) -> Plan:
    """How to answer ``query`` on ``search`` with DICOMweb's own matching (see the module doc)."""
    path = search.below_root()
    raw_ignored = [(k, v) for k, v in query.ignored if is_raw_safe(k) and is_raw_safe(v)]
    if not query.needs_resolution():
        pairs = [*query.filters, *raw_ignored, *_control_pairs(query, paging=True)]
        return DirectPlan(path, _raw_query(pairs))
    constraints = {_find_key(k): find_constraint(v) for k, v in query.filters}
    for key, uid in search.path_constraints().items():
        constraints.setdefault(key, uid)
    find: dict[str, Any] = {
        "Level": FIND_LEVEL[search.level],
        "Query": constraints,
        "Expand": True,
    }
    if case_sensitive is not None:
        find["CaseSensitive"] = case_sensitive
    uid_key = LEVEL_UID[search.level]
    kept = [(k, v) for k, v in query.filters if is_raw_safe(v) and k != uid_key]
    dropped = [k for k, v in query.filters if not is_raw_safe(v) and k != uid_key]
    pairs = [*kept, *raw_ignored, *_control_pairs(query, paging=False, extra_include=dropped)]
    return ResolvedPlan(path, find, uid_key, tuple(pairs), query.limit, query.offset)


def uids_of(found: Sequence[Mapping[str, Any]], level: Level) -> list[str]:
    """The level's UIDs out of an expanded ``/tools/find`` answer, in its order."""
    key = LEVEL_UID[level]
    out: list[str] = []
    for resource in found:
        tags = resource.get("MainDicomTags") if isinstance(resource, Mapping) else None
        uid = tags.get(key) if isinstance(tags, Mapping) else None
        if isinstance(uid, str) and uid:
            out.append(uid)
    return out


def passthrough_query(raw: bytes) -> str:
    """The client's query string as it came, for a platform whose Orthanc decodes it itself."""
    return raw.decode("ascii", errors="strict")
