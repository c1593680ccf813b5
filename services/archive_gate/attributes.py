"""Checks of top-level attribute values: required UIDs, UID syntax, lengths, NULs, numbers.

Only top-level elements (and the file meta) are checked: they are what Orthanc indexes and what
DICOMweb turns into JSON; sequences are skipped by the reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Final

from . import codes
from .charset import decode
from .dictionary import (CHARSET_TEXT_VRS, DEFAULT_TEXT_VRS, MAX_CHARS, MULTI_VALUE_VRS,
                         TAG_OF, VR_OF, name)
from .reader import UNDEFINED, Element, Parsed
from .verdict import Reason

REQUIRED: Final = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
"""Orthanc files an instance under its study, series and SOP Instance UIDs; without its SOP Class
UID no DICOM client can retrieve it (C-GET/C-MOVE negotiate by SOP class). PatientID is not
required: Orthanc accepts an empty one, and a missing patient is not a decoding hazard."""

_UID: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_IS: Final = re.compile(r"[+-]?[0-9]+")
_DS: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NOT_DEFAULT: Final = re.compile(rb"[\x00-\x1f\x80-\xff]")
"""Bytes a default-repertoire VR (AE, AS, CS, DA, DS, DT, IS, TM, UI, UR) may not hold."""
_BAD_CONTROL: Final = re.compile(rb"[\x00-\x1a\x1c-\x1f]")
_BAD_CONTROL_LONG_TEXT: Final = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
"""Controls in text VRs: all but ESC (ISO 2022); LT, ST, UT also allow TAB, LF, FF, CR
(PS3.5 6.1.3)."""


def check(parsed: Parsed, codec: str) -> list[Reason]:
    reasons = list(_required(parsed))
    for element in _string_elements(parsed):
        reasons.extend(_value(parsed, element, codec))
    return reasons


def _required(parsed: Parsed) -> Iterator[Reason]:
    if parsed.stopped:
        return  # what was not reached is not missing: the reason the read stopped says enough
    for keyword in REQUIRED:
        tag = TAG_OF[keyword]
        if not parsed.text(tag):
            what = "missing" if parsed.get(tag) is None else "empty"
            yield Reason(codes.REQUIRED_MISSING, tag, f"{name(tag)} is {what}; the archive "
                         "needs the SOP Class, SOP Instance, Study and Series Instance UIDs to "
                         "file and retrieve an instance")


def _string_elements(parsed: Parsed) -> Iterable[Element]:
    """String elements, UN ones of known string attributes included (checked as their VR: a
    sender that did not know the VR still sends the value Orthanc will index)."""
    for element in (*parsed.meta.values(), *parsed.elements):
        if element.length == UNDEFINED:
            continue
        vr = element.vr
        if vr == "UN":
            vr = VR_OF.get(element.tag, "UN")
            element = replace(element, vr=vr)
        if vr in DEFAULT_TEXT_VRS or vr in CHARSET_TEXT_VRS:
            yield element


def _value(parsed: Parsed, element: Element, codec: str) -> Iterator[Reason]:
    tag, vr = element.tag, element.vr
    raw = parsed.raw(element)
    if b"\0" in raw.rstrip(b"\0"):
        yield Reason(codes.VALUE_NUL, tag, f"{name(tag)} has a NUL byte at position "
                     f"{raw.index(0)} inside its value; indexes would cut it there")
        return
    raw = raw.rstrip(b"\0 ")
    if vr in DEFAULT_TEXT_VRS:
        bad = _NOT_DEFAULT.search(raw)
        if bad:
            yield Reason(codes.VALUE_CHARACTERS, tag, f"{name(tag)} (VR {vr}) holds byte "
                         f"0x{bad.group()[0]:02X}; this VR allows ASCII only")
            return
        text = raw.decode("ascii")
    else:
        controls = _BAD_CONTROL_LONG_TEXT if vr in ("LT", "ST", "UT") else _BAD_CONTROL
        bad = controls.search(raw)
        if bad:
            yield Reason(codes.VALUE_CHARACTERS, tag, f"{name(tag)} (VR {vr}) holds the control "
                         f"byte 0x{bad.group()[0]:02X}")
            return
        if vr not in ("PN", "LO", "SH", "LT", "ST") or len(raw) <= MAX_CHARS[vr]:
            return  # no more characters than bytes: nothing can be too long; no number, no UID
        text = decode(raw, codec)
    values = text.split("\\") if vr in MULTI_VALUE_VRS else [text]
    if len(raw) > MAX_CHARS.get(vr, len(raw)):
        yield from _lengths(tag, vr, values)
    if vr == "UI":
        yield from _uids(tag, values)
    elif vr in ("IS", "DS"):
        yield from _numbers(tag, vr, values)


def _lengths(tag: int, vr: str, values: list[str]) -> Iterator[Reason]:
    limit = MAX_CHARS.get(vr)
    if limit is None:
        return
    for value in values:
        parts = value.split("=") if vr == "PN" else [value]
        longest = max(len(part.rstrip(" ")) for part in parts)
        if longest > limit:
            what = "a component group of " if vr == "PN" else ""
            yield Reason(codes.VALUE_TOO_LONG, tag, f"{what}{name(tag)} is {longest} characters "
                         f"long; VR {vr} allows {limit} (PS3.5 6.2): {value[:24]!r}...")
            return


def _uids(tag: int, values: list[str]) -> Iterator[Reason]:
    for value in values:
        if value and (len(value) > 64 or not _UID.fullmatch(value)):
            yield Reason(codes.UID_INVALID, tag, f"{name(tag)} {value[:80]!r} is not a valid UID "
                         "(digits and dots, no empty or leading-zero component, at most 64 "
                         "characters; PS3.5 9.1)")
            return


def _numbers(tag: int, vr: str, values: list[str]) -> Iterator[Reason]:
    for value in values:
        value = value.strip(" ")
        if not value:
            continue
        if vr == "IS":
            good = bool(_IS.fullmatch(value)) and -(2 ** 31) <= int(value) < 2 ** 31
        else:
            good = bool(_DS.fullmatch(value))
        if not good:
            kind = "an integer string (IS)" if vr == "IS" else "a decimal string (DS)"
            yield Reason(codes.NUMBER_INVALID, tag, f"{name(tag)} {value[:24]!r} is not {kind}; "
                         "DICOMweb cannot turn it into a JSON number")
            return
