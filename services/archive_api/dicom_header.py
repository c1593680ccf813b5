"""The few identifiers STOW-RS needs from an instance, read from its first bytes, pure.

A STOW-RS answer names each instance by SOP Class and SOP Instance UID and builds its Retrieve
URL from the Study and Series Instance UIDs (PS3.18 §10.5.3); the study is also checked against
the one in the request's URL. Parsing the whole data set with pydicom for that would cost more
than storing it, so :func:`read_identifiers` walks the element headers of a prefix of the bytes
(Part 10 with or without its meta group, implicit or explicit VR, little or big endian, deflated)
and stops after (0020,000E). Anything it cannot read ends the walk: what was found so far is
returned (best effort); nothing here raises on bad input.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["Identifiers", "read_identifiers"]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"

_SOP_CLASS = 0x00080016
_SOP_INSTANCE = 0x00080018
_STUDY = 0x0020000D
_SERIES = 0x0020000E
_WANTED = {_SOP_CLASS: "sop_class_uid", _SOP_INSTANCE: "sop_instance_uid",
           _STUDY: "study_instance_uid", _SERIES: "series_instance_uid"}
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 16
_INFLATED_LIMIT = 1 << 20


class _Stop(Exception):
    """The walk cannot go on (truncated prefix, a length that does not fit, bad nesting)."""


@dataclass(frozen=True)
class Identifiers:
    """What was read; each UID is None when absent or unreadable."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    transfer_syntax: str | None = None
    #: a Part 10 file ("DICM" after the preamble), or a data set whose elements could be walked
    looks_like_dicom: bool = False


def _text(raw: bytes) -> str | None:
    value = raw.rstrip(b"\x00 ").lstrip(b" ").decode("ascii", errors="replace")
    return value or None


class _Walker:
    def __init__(self, data: bytes, explicit: bool, big: bool) -> None:
        self.data = data
        self.explicit = explicit
        self.little = "<" if not big else ">"
        self.found: dict[str, str] = {}
        self.elements = 0

    def _u16(self, at: int) -> int:
        if at + 2 > len(self.data):
            raise _Stop
        return int(struct.unpack_from(self.little + "H", self.data, at)[0])

    def _u32(self, at: int) -> int:
        if at + 4 > len(self.data):
            raise _Stop
        return int(struct.unpack_from(self.little + "I", self.data, at)[0])

    def _header(self, at: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
        """(tag, vr, length, where the value starts)."""
        tag = (self._u16(at) << 16) | self._u16(at + 2)
        if tag in (_ITEM, _ITEM_END, _SEQUENCE_END) or not explicit:
            return tag, None, self._u32(at + 4), at + 8
        vr = self.data[at + 4:at + 6]
        if len(vr) < 2:
            raise _Stop
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            raise _Stop
        if vr in _LONG_VRS:
            return tag, vr, self._u32(at + 8), at + 12
        return tag, vr, self._u16(at + 6), at + 8

    def top_level(self, at: int) -> None:
        """Walk the data set from ``at``, keeping the wanted values, until past (0020,000E)."""
        last = -1
        while at < len(self.data):
            tag, vr, length, value = self._header(at, self.explicit)
            if tag <= last or tag in (_ITEM, _ITEM_END, _SEQUENCE_END):
                raise _Stop  # not ascending: not a data set we can read
            last = tag
            if tag > _SERIES:
                return
            self.elements += 1
            if length == _UNDEFINED:
                at = self._skip_undefined(value, self.explicit and vr != b"UN", 0)
                continue
            if value + length > len(self.data):
                raise _Stop
            if tag in _WANTED:
                text = _text(self.data[value:value + length])
                if text is not None:
                    self.found[_WANTED[tag]] = text
            at = value + length

    def _skip_undefined(self, at: int, explicit: bool, depth: int) -> int:
        """Past a sequence (or UN, or encapsulated data) of undefined length: its items."""
        if depth > _MAX_DEPTH:
            raise _Stop
        while True:
            tag, _, length, value = self._header(at, explicit)
            if tag == _SEQUENCE_END:
                return value
            if tag != _ITEM:
                raise _Stop
            if length != _UNDEFINED:
                at = value + length
                continue
            at = self._skip_item(value, explicit, depth + 1)

    def _skip_item(self, at: int, explicit: bool, depth: int) -> int:
        while True:
            tag, vr, length, value = self._header(at, explicit)
            if tag == _ITEM_END:
                return value
            if length == _UNDEFINED:
                at = self._skip_undefined(value, explicit and vr != b"UN", depth)
            else:
                at = value + length
            if at > len(self.data):
                raise _Stop


def _meta_group(data: bytes, at: int) -> tuple[dict[int, str], int]:
    """The File Meta Information (group 0002, always explicit VR little endian)."""
    walker = _Walker(data, explicit=True, big=False)
    values: dict[int, str] = {}
    while at + 8 <= len(data) and data[at:at + 2] == b"\x02\x00":
        tag, _, length, value = walker._header(at, True)
        if length == _UNDEFINED or value + length > len(data):
            raise _Stop
        if tag in (0x00020002, 0x00020003, 0x00020010):
            text = _text(data[value:value + length])
            if text is not None:
                values[tag] = text
        at = value + length
    return values, at


def _explicit_at(data: bytes, at: int) -> bool:
    vr = data[at + 4:at + 6]
    return len(vr) == 2 and 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90


def read_identifiers(prefix: bytes) -> Identifiers:
    """The UIDs found in ``prefix`` (the first bytes of an instance, or all of them)."""
    at = 0
    meta: dict[int, str] = {}
    part10 = prefix[128:132] == b"DICM"
    try:
        if part10:
            at = 132
        if prefix[at:at + 2] == b"\x02\x00":
            meta, at = _meta_group(prefix, at)
    except _Stop:
        return Identifiers(transfer_syntax=meta.get(0x00020010), looks_like_dicom=part10)
    syntax = meta.get(0x00020010)
    data = prefix
    if syntax == DEFLATED_LE:
        try:
            data = zlib.decompressobj(-15).decompress(prefix[at:], _INFLATED_LIMIT)
        except zlib.error:
            data = b""
        at = 0
    if syntax is None:
        explicit = _explicit_at(data, at)
        big = False
    else:
        explicit = syntax != IMPLICIT_LE
        big = syntax == EXPLICIT_BE
    walker = _Walker(data, explicit=explicit, big=big)
    try:
        walker.top_level(at)
    except _Stop:
        pass
    found = dict(walker.found)
    found.setdefault("sop_class_uid", meta.get(0x00020002) or "")
    found.setdefault("sop_instance_uid", meta.get(0x00020003) or "")
    return Identifiers(
        sop_class_uid=found["sop_class_uid"] or None,
        sop_instance_uid=found["sop_instance_uid"] or None,
        study_instance_uid=found.get("study_instance_uid"),
        series_instance_uid=found.get("series_instance_uid"),
        transfer_syntax=syntax,
        looks_like_dicom=part10 or (walker.elements > 0 and "sop_instance_uid" in walker.found),
    )
