"""The STOW-RS answer (PS3.18 §10.5.3, Table 10.5.3-1) from the parts' outcomes, pure.

Every part of a request has one :class:`PartOutcome`: stored (maybe with a warning, e.g. the
ingest gate repaired it) or failed with a DICOM failure reason. From them:

- :func:`status_of`: 200 every part stored without warning; 202 some stored and some failed or
  warned; 409 none stored. (400, 406 and 415 are decided before any part is looked at.)
- :func:`response_dataset`: the Store Instances Response Module as DICOM JSON (PS3.18 F.2):
  RetrieveURL of the study (when the request had a study in its URL, or every stored instance is
  of one study), ReferencedSOPSequence, FailedSOPSequence. :func:`to_xml` writes the same
  dataset as the Native DICOM Model (PS3.19 A.1) for a client that accepts only
  ``application/dicom+xml``.
- :func:`warning_header`: the reason in words for one failed or warned part, as an RFC 7234
  ``Warning: 299 archive "..."`` value, ASCII only (non-ASCII percent-encoded as UTF-8).
- :func:`choose_format`: JSON or XML from the Accept header; None when neither is acceptable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "CANNOT_UNDERSTAND", "COERCED", "DICOM_JSON", "DICOM_XML", "DATASET_MISMATCH",
    "OUT_OF_RESOURCES", "PROCESSING_FAILURE", "PartOutcome", "choose_format", "instance_url",
    "response_dataset", "status_of", "to_xml", "warning_header", "warning_text",
]

DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"

#: Failure reasons (PS3.18 Table 10.5.3-2; the DIMSE statuses of PS3.4 B.2.3).
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900   # "Data Set does not match SOP Class"; also a study not the URL's
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
#: Warning reason: "Coercion of Data Elements" (the gate changed the instance losslessly).
COERCED = 0xB000

_RETRIEVE_URL = "00081190"
_REFERENCED_SOP_SEQUENCE = "00081199"
_FAILED_SOP_SEQUENCE = "00081198"
_SOP_CLASS = "00081150"
_SOP_INSTANCE = "00081155"
_FAILURE_REASON = "00081197"
_WARNING_REASON = "00081196"
_KEYWORDS = {
    _RETRIEVE_URL: "RetrieveURL", _REFERENCED_SOP_SEQUENCE: "ReferencedSOPSequence",
    _FAILED_SOP_SEQUENCE: "FailedSOPSequence", _SOP_CLASS: "ReferencedSOPClassUID",
    _SOP_INSTANCE: "ReferencedSOPInstanceUID", _FAILURE_REASON: "FailureReason",
    _WARNING_REASON: "WarningReason",
}

Format = Literal["json", "xml"]


@dataclass(frozen=True)
class PartOutcome:
    """What became of one part (``index`` counts from 0 in the body's order)."""

    index: int
    stored: bool
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    failure_reason: int | None = None
    warning_reason: int | None = None
    #: the reason in words, for the Warning header and the log ("" when nothing to say)
    message: str = ""
    #: the quarantine entry that holds the part's bytes, when it is in the quarantine
    quarantine_id: str | None = None

    def __post_init__(self) -> None:
        if self.stored == (self.failure_reason is not None):
            raise ValueError("a part is either stored or has a failure reason")

    @property
    def warned(self) -> bool:
        return self.stored and self.warning_reason is not None


def status_of(outcomes: Sequence[PartOutcome]) -> int:
    stored = sum(1 for o in outcomes if o.stored)
    if stored == 0:
        return 409
    if stored == len(outcomes) and not any(o.warned for o in outcomes):
        return 200
    return 202


def instance_url(base: str, outcome: PartOutcome) -> str | None:
    """``{base}/studies/{s}/series/{se}/instances/{i}`` when the three UIDs are known."""
    if not (outcome.study_instance_uid and outcome.series_instance_uid
            and outcome.sop_instance_uid):
        return None
    return (f"{base}/studies/{outcome.study_instance_uid}/series/"
            f"{outcome.series_instance_uid}/instances/{outcome.sop_instance_uid}")


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _uids(outcome: PartOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {}
    item[_SOP_CLASS] = _element("UI", *([outcome.sop_class_uid] if outcome.sop_class_uid else []))
    item[_SOP_INSTANCE] = _element(
        "UI", *([outcome.sop_instance_uid] if outcome.sop_instance_uid else []))
    return item


def response_dataset(outcomes: Sequence[PartOutcome], base: str,
                     study: str | None = None) -> dict[str, Any]:
    """The Store Instances Response Module as DICOM JSON; ``base`` is the DICOMweb root URL as
    the client reaches it, ``study`` the Study Instance UID of the request's URL."""
    dataset: dict[str, Any] = {}
    stored_studies = {o.study_instance_uid for o in outcomes if o.stored}
    target = study or (next(iter(stored_studies)) if len(stored_studies) == 1 else None)
    if target:
        dataset[_RETRIEVE_URL] = _element("UR", f"{base}/studies/{target}")
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for outcome in outcomes:
        item = _uids(outcome)
        if outcome.stored:
            url = instance_url(base, outcome)
            if url:
                item[_RETRIEVE_URL] = _element("UR", url)
            if outcome.warning_reason is not None:
                item[_WARNING_REASON] = _element("US", outcome.warning_reason)
            referenced.append(item)
        else:
            item[_FAILURE_REASON] = _element("US", outcome.failure_reason)
            failed.append(item)
    if referenced:
        dataset[_REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": referenced}
    if failed:
        dataset[_FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    return dataset


def _xml_attributes(dataset: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for tag in sorted(dataset):
        element = dataset[tag]
        vr = element["vr"]
        head = (f'{indent}<DicomAttribute tag="{tag}" vr="{vr}" '
                f'keyword="{_KEYWORDS.get(tag, "")}"')
        values = element.get("Value", [])
        if not values:
            lines.append(head + "/>")
            continue
        lines.append(head + ">")
        for number, value in enumerate(values, start=1):
            if vr == "SQ":
                lines.append(f'{indent} <Item number="{number}">')
                lines.extend(_xml_attributes(value, indent + "  "))
                lines.append(f"{indent} </Item>")
            else:
                lines.append(f'{indent} <Value number="{number}">{escape(str(value))}</Value>')
        lines.append(f"{indent}</DicomAttribute>")
    return lines


def to_xml(dataset: dict[str, Any]) -> bytes:
    """The dataset as a PS3.19 Native DICOM Model document (UTF-8)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">',
             *_xml_attributes(dataset, " "), "</NativeDicomModel>"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _ascii_safe(text: str) -> str:
    """Printable ASCII stays, ``%`` and everything else is percent-encoded (UTF-8)."""
    return "".join(c if " " <= c <= "~" and c != "%" else quote(c, safe="") for c in text)


def warning_header(outcome: PartOutcome, agent: str = "archive") -> str:
    """``299 archive "part 2 (SOP Instance 1.2.3): <message>"`` (RFC 7234 §5.5)."""
    who = f"part {outcome.index + 1}"
    if outcome.sop_instance_uid:
        who += f" (SOP Instance {outcome.sop_instance_uid})"
    code = outcome.failure_reason if outcome.failure_reason is not None \
        else outcome.warning_reason
    status = f"{'failed' if not outcome.stored else 'warning'} 0x{code or 0:04X}"
    return warning_text(f"{who}: {status}: {outcome.message or 'no details'}", agent)


def warning_text(text: str, agent: str = "archive") -> str:
    """``299 archive "<text>"``: ASCII only, quotes and backslashes escaped (RFC 7234 §5.5)."""
    quoted = _ascii_safe(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'299 {agent} "{quoted}"'


def _accept_entries(accept: str) -> list[tuple[str, float, int]]:
    entries: list[tuple[str, float, int]] = []
    for position, item in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        entries.append((media.lower(), q, position))
    return entries


def choose_format(accept: str | None) -> Format | None:
    """DICOM JSON unless the client accepts XML and not JSON (or prefers XML by q-value)."""
    if not accept or not accept.strip():
        return "json"
    scores: dict[Format, float] = {"json": 0.0, "xml": 0.0}
    for media, q, _ in _accept_entries(accept):
        if media in (DICOM_JSON, "application/json", "*/*", "application/*"):
            scores["json"] = max(scores["json"], q)
        if media in (DICOM_XML, "*/*", "application/*"):
            scores["xml"] = max(scores["xml"], q)
    if scores["json"] <= 0 and scores["xml"] <= 0:
        return None
    return "xml" if scores["xml"] > scores["json"] else "json"
