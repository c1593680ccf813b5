"""A defensive reader of DICOM bytes: the file meta, the top-level elements with their offsets,
and a description of Pixel Data, without copying or decoding pixels.

It reads a Part 10 file (preamble, ``DICM``, group 0002, then the data set in the declared
transfer syntax), a Part 10 stream without the preamble (starts at group 0002) or a bare data set
(starts at group 0008; Explicit or Implicit VR Little Endian, guessed from its first element).
Sequences are skipped, by their length or by walking their items to the delimiters; the walk
stops at Pixel Data (7FE0,0010). What cannot be read becomes a :class:`Reason` in
:attr:`Parsed.problems`; reading never raises. Every step consumes at least 8 bytes, so the
work is bounded by the size of the header (plus one item header per pixel data fragment).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Final

from . import codes
from .dictionary import LONG_LENGTH_VRS, VRS, implicit_vr, name
from .syntaxes import EXPLICIT, IMPLICIT, SYNTAXES, Syntax
from .verdict import Reason

UNDEFINED: Final = 0xFFFFFFFF
ITEM: Final = 0xFFFEE000
ITEM_END: Final = 0xFFFEE00D
SEQUENCE_END: Final = 0xFFFEE0DD
PIXEL_DATA: Final = 0x7FE00010
TRANSFER_SYNTAX_UID: Final = 0x00020010
MAX_DEPTH: Final = 16
"""Nested sequences deeper than this are refused (no IOD comes close; it bounds recursion)."""
MAX_ELEMENTS: Final = 1 << 16
"""Top-level elements read before the data set is refused (real ones have a few thousand)."""
MAX_FRAGMENTS: Final = 1 << 17
"""Pixel data items read before the encapsulation is refused (one per frame, or a few)."""
MAX_INFLATED: Final = 64 << 20
"""A deflated data set may inflate to at most this many bytes (a deflate bomb is refused)."""

_VR_OF_BYTES: Final = {vr.encode(): vr for vr in VRS}
_VR_BYTES: Final = frozenset(_VR_OF_BYTES)
_LE_HEADER: Final = struct.Struct("<HHI")
_BE_HEADER: Final = struct.Struct(">HHI")
_LE_LONG: Final = struct.Struct("<I")
_BE_LONG: Final = struct.Struct(">I")


@dataclass(frozen=True)
class Element:
    """One element: where its header starts, where its value starts, its declared length
    (:data:`UNDEFINED` for sequences with delimiters) and where the whole element ends."""

    tag: int
    vr: str
    offset: int
    value_offset: int
    length: int
    end: int
    little: bool = True


@dataclass(frozen=True)
class Fragment:
    offset: int
    """Offset of the fragment's first byte (after its item header)."""
    length: int


@dataclass(frozen=True)
class PixelData:
    element: Element
    encapsulated: bool
    offset_table: tuple[int, ...] = ()
    """Basic Offset Table entries (encapsulated only; empty when the table is empty)."""
    fragments: tuple[Fragment, ...] = ()
    complete: bool = True
    """False when the encapsulated items could not all be read (a problem says why)."""


@dataclass
class Parsed:
    buffer: memoryview
    """The bytes the offsets refer to: the input, or for a deflated data set the meta followed by
    the inflated data set."""
    has_meta: bool = False
    meta: dict[int, Element] = field(default_factory=dict)
    transfer_syntax: str | None = None
    syntax: Syntax | None = None
    dataset_offset: int = 0
    elements: list[Element] = field(default_factory=list)
    """Top-level data set elements in file order, Pixel Data excluded."""
    by_tag: dict[int, Element] = field(default_factory=dict)
    pixel: PixelData | None = None
    problems: list[Reason] = field(default_factory=list)
    stopped: bool = False
    """True when reading stopped before the end of the data (a problem says why)."""

    def raw(self, element: Element) -> bytes:
        if element.length == UNDEFINED:
            return b""
        return bytes(self.buffer[element.value_offset:element.value_offset + element.length])

    def get(self, tag: int) -> Element | None:
        return self.meta.get(tag) if tag >> 16 == 2 else self.by_tag.get(tag)

    def text(self, tag: int) -> str | None:
        """A default-repertoire value without its padding (None when absent)."""
        element = self.get(tag)
        if element is None:
            return None
        return self.raw(element).decode("ascii", "replace").strip(" \0")

    def us(self, element: Element) -> int | None:
        """The first value of a US element, None unless its length is 2 or more and even."""
        if element.length == UNDEFINED or element.length < 2:
            return None
        fmt = "<H" if element.little else ">H"
        value: int = struct.unpack_from(fmt, self.buffer, element.value_offset)[0]
        return value


class _Stop(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


def _stop(code: str, tag: int | None, message: str) -> _Stop:
    return _Stop(Reason(code, tag, message))


def read(data: bytes | bytearray | memoryview) -> Parsed:
    """Read ``data`` as far as it goes; never raises."""
    buffer = memoryview(data)
    if buffer.ndim != 1 or buffer.format not in ("B", "b", "c"):
        buffer = buffer.cast("B")
    parsed = Parsed(buffer)
    try:
        _read(parsed)
    except _Stop as stop:
        parsed.problems.append(stop.reason)
        parsed.stopped = True
    return parsed


def _read(parsed: Parsed) -> None:
    buf = parsed.buffer
    size = len(buf)
    if size == 0:
        raise _stop(codes.EMPTY, None, "the body is empty (0 bytes)")
    if size >= 132 and buf[128:132] == b"DICM":
        parsed.has_meta, pos = True, 132
    elif size >= 6 and buf[0:2] == b"\x02\x00" and bytes(buf[4:6]) in _VR_BYTES:
        parsed.has_meta, pos = True, 0
    elif _bare_data_set(buf):
        pos = 0
    else:
        raise _stop(codes.NOT_DICOM, None, f"not DICOM: {_what_it_looks_like(buf)}")
    if parsed.has_meta:
        pos = _read_meta(parsed, pos)
        syntax = _meta_syntax(parsed, pos)
    else:
        syntax = _guess_syntax(buf, pos)
    parsed.syntax = syntax
    if syntax.deflated:
        buf = parsed.buffer = _inflate(buf, pos)
    parsed.dataset_offset = pos
    _walk_data_set(parsed, pos, syntax)


def _bare_data_set(buf: memoryview) -> bool:
    """A data set without file meta starts with an element of group 0008 (PS3.5 7.1)."""
    return len(buf) >= 8 and buf[0:2] == b"\x08\x00" and buf[3] < 0x20


def _what_it_looks_like(buf: memoryview) -> str:
    head = bytes(buf[:8])
    for magic, kind in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                        (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
                        (b"\x1f\x8b", "a gzip stream")):
        if head.startswith(magic):
            return kind
    first = head.lstrip()[:1]
    if first in (b"{", b"["):
        return "JSON text"
    if first == b"<":
        return "XML or HTML text"
    if head.startswith(b"--"):
        return "a multipart body (send the parts, not the whole body)"
    return f"{len(buf)} bytes starting {head.hex(' ')}"


def _read_meta(parsed: Parsed, pos: int) -> int:
    buf, end = parsed.buffer, len(parsed.buffer)
    while pos + 2 <= end and buf[pos:pos + 2] == b"\x02\x00":
        try:
            tag, vr, value_offset, length = _header(buf, pos, end, EXPLICIT)
        except _Stop as stop:
            if stop.reason.code == codes.TRUNCATED:
                raise
            raise _stop(codes.META_INVALID, stop.reason.tag,
                        f"file meta information: {stop.reason.message}") from None
        if length == UNDEFINED:
            raise _stop(codes.META_INVALID, tag, f"{name(tag)} in the file meta information "
                        "has an undefined length")
        if value_offset + length > end:
            raise _truncated(tag, value_offset, length, end)
        parsed.meta[tag] = Element(tag, vr, pos, value_offset, length, value_offset + length)
        pos = value_offset + length
    return pos


def _meta_syntax(parsed: Parsed, pos: int) -> Syntax:
    uid = parsed.text(TRANSFER_SYNTAX_UID)
    if not uid:
        parsed.problems.append(Reason(codes.TRANSFER_SYNTAX_MISSING, TRANSFER_SYNTAX_UID,
                                      "the file meta information has no Transfer Syntax UID"))
        return _guess_syntax(parsed.buffer, pos)
    parsed.transfer_syntax = uid
    known = SYNTAXES.get(uid)
    if known is None:
        parsed.problems.append(Reason(
            codes.TRANSFER_SYNTAX_UNSUPPORTED, TRANSFER_SYNTAX_UID,
            f"transfer syntax {uid!r} is not one the archive accepts (uncompressed, deflated, "
            "JPEG, JPEG-LS, JPEG 2000, RLE)"))
        return _guess_syntax(parsed.buffer, pos)
    return known


def _guess_syntax(buf: memoryview, pos: int) -> Syntax:
    """Explicit VR LE when the first element carries a VR, else Implicit VR LE."""
    return EXPLICIT if bytes(buf[pos + 4:pos + 6]) in _VR_BYTES else IMPLICIT


def _inflate(buf: memoryview, pos: int) -> memoryview:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(buf[pos:], MAX_INFLATED)
    except zlib.error as error:
        raise _stop(codes.DEFLATE_INVALID, None, f"the deflated data set does not inflate: "
                    f"{error}") from None
    if inflater.unconsumed_tail:
        raise _stop(codes.DEFLATE_INVALID, None, "the deflated data set inflates to more than "
                    f"{MAX_INFLATED >> 20} MiB")
    return memoryview(bytes(buf[:pos]) + inflated)


def _header(buf: memoryview, pos: int, end: int, syntax: Syntax) -> tuple[int, str, int, int]:
    """(tag, VR, value offset, length) of the element header at ``pos``."""
    if pos + 8 > end:
        raise _stop(codes.TRUNCATED, None, f"the data (or the item holding it) ends at offset "
                    f"{end} inside an element header that starts at offset {pos}")
    little = syntax.little
    group, elem, length = (_LE_HEADER if little else _BE_HEADER).unpack_from(buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE or not syntax.explicit:
        return tag, ("" if group == 0xFFFE else implicit_vr(tag)), pos + 8, length
    vr = _VR_OF_BYTES.get(bytes(buf[pos + 4:pos + 6]))
    if vr is None:
        raise _stop(codes.VR_INVALID, tag, f"{name(tag)} at offset {pos} has VR "
                    f"{bytes(buf[pos + 4:pos + 6])!r}, which is not a DICOM VR")
    if vr in LONG_LENGTH_VRS:
        if pos + 12 > end:
            raise _stop(codes.TRUNCATED, tag, f"the data ends inside the header of {name(tag)}")
        (length,) = (_LE_LONG if little else _BE_LONG).unpack_from(buf, pos + 8)
        return tag, vr, pos + 12, length
    return tag, vr, pos + 8, length >> 16 if little else length & 0xFFFF


def _truncated(tag: int, value_offset: int, length: int, end: int) -> _Stop:
    return _stop(codes.TRUNCATED, tag, f"{name(tag)} declares {length} bytes at offset "
                 f"{value_offset} but only {max(end - value_offset, 0)} remain: the file is "
                 "truncated or the length is wrong")


def _skip_value(buf: memoryview, tag: int, vr: str, value_offset: int, length: int, end: int,
                syntax: Syntax, depth: int) -> int:
    """Where the element whose value starts at ``value_offset`` ends. Sequences (SQ) are walked
    item by item, to their length or their delimiters; other values are skipped."""
    if length != UNDEFINED:
        if value_offset + length > end:
            raise _truncated(tag, value_offset, length, end)
        if vr == "SQ":
            _skip_sequence(buf, tag, value_offset, value_offset + length, syntax, depth + 1,
                           bounded=True)
        return value_offset + length
    if vr in ("SQ", "UN"):
        # An undefined-length UN is a sequence encoded in Implicit VR LE (PS3.5 6.2.2).
        inner = syntax if vr == "SQ" else IMPLICIT
        return _skip_sequence(buf, tag, value_offset, end, inner, depth + 1, bounded=False)
    raise _stop(codes.LENGTH_UNDEFINED, tag, f"{name(tag)} (VR {vr}) has an undefined length "
                "(FFFFFFFF), which only sequences and encapsulated pixel data may have")


def _skip_sequence(buf: memoryview, tag: int, pos: int, end: int, syntax: Syntax, depth: int,
                   *, bounded: bool) -> int:
    """Walk the items of sequence ``tag`` from ``pos``; ``end`` is the sequence's own end when
    ``bounded`` (defined length), else the end of what contains it."""
    if depth > MAX_DEPTH:
        raise _stop(codes.SEQUENCE_INVALID, tag, f"sequences nested more than {MAX_DEPTH} deep")
    while not (bounded and pos == end):
        item, _, value_offset, length = _header(buf, pos, end, syntax)
        if item == SEQUENCE_END and not bounded:
            return value_offset
        if item != ITEM:
            raise _stop(codes.SEQUENCE_INVALID, tag, f"in the sequence {name(tag)}, offset {pos} "
                        f"holds {name(item)} where an item{'' if bounded else ' or delimiter'} "
                        "belongs")
        if length == UNDEFINED:
            pos = _skip_item(buf, tag, value_offset, end, syntax, depth, bounded=False)
        elif value_offset + length > end:
            raise _truncated(tag, value_offset, length, end)
        else:
            pos = _skip_item(buf, tag, value_offset, value_offset + length, syntax, depth,
                             bounded=True)
    return pos


def _skip_item(buf: memoryview, tag: int, pos: int, end: int, syntax: Syntax, depth: int,
               *, bounded: bool) -> int:
    while not (bounded and pos == end):
        inner, vr, value_offset, length = _header(buf, pos, end, syntax)
        if inner == ITEM_END and not bounded:
            return value_offset
        if inner >> 16 == 0xFFFE:
            raise _stop(codes.SEQUENCE_INVALID, tag, f"in the sequence {name(tag)}, offset {pos} "
                        f"holds {name(inner)} inside an item")
        pos = _skip_value(buf, inner, vr, value_offset, length, end, syntax, depth)
    return pos


def _walk_data_set(parsed: Parsed, pos: int, syntax: Syntax) -> None:
    buf = parsed.buffer
    end = len(buf)
    previous = -1
    while pos < end:
        tag, vr, value_offset, length = _header(buf, pos, end, syntax)
        if tag >> 16 == 0xFFFE:
            raise _stop(codes.SEQUENCE_INVALID, tag, f"an item or delimiter tag at offset {pos} "
                        "outside any sequence")
        if tag <= previous:
            parsed.problems.append(Reason(codes.TAG_ORDER, tag, f"{name(tag)} at offset {pos} "
                                          f"follows {name(previous)}: tags must ascend, once each"))
        previous = max(previous, tag)
        if tag == PIXEL_DATA:
            parsed.pixel = _pixel_data(parsed, Element(tag, vr, pos, value_offset, length,
                                                       end, syntax.little), syntax)
            return
        element_end = _skip_value(buf, tag, vr, value_offset, length, end, syntax, 0)
        if length != UNDEFINED and length % 2:
            parsed.problems.append(Reason(codes.LENGTH_ODD, tag, f"{name(tag)} has an odd length "
                                          f"({length}); DICOM values have even lengths"))
        element = Element(tag, vr, pos, value_offset, length, element_end, syntax.little)
        if len(parsed.elements) >= MAX_ELEMENTS:
            raise _stop(codes.HEADER_TOO_LARGE, tag, f"more than {MAX_ELEMENTS} top-level "
                        "elements: not an image header")
        parsed.elements.append(element)
        parsed.by_tag.setdefault(tag, element)
        pos = element_end


def _pixel_data(parsed: Parsed, element: Element, syntax: Syntax) -> PixelData:
    buf, end = parsed.buffer, len(parsed.buffer)
    tag, start, length = element.tag, element.value_offset, element.length
    if length != UNDEFINED:
        if start + length > end:
            parsed.problems.append(_truncated(tag, start, length, end).reason)
        elif length % 2:
            parsed.problems.append(Reason(codes.LENGTH_ODD, tag, f"Pixel Data has an odd length "
                                          f"({length}); DICOM values have even lengths"))
        return PixelData(element, encapsulated=False)
    if syntax.codec is None or not syntax.little or not syntax.explicit:
        parsed.problems.append(Reason(codes.ENCAPSULATION_INVALID, tag, "Pixel Data has an "
                                      "undefined length (encapsulated) in a transfer syntax for "
                                      "uncompressed pixels"))
        return PixelData(element, encapsulated=True, complete=False)
    items: list[Fragment] = []
    pos = start
    problem: Reason | None = None
    while problem is None:
        if pos + 8 > end:
            problem = Reason(codes.TRUNCATED, tag, f"the data ends at offset {end} inside the "
                             "encapsulated Pixel Data (no sequence delimiter)")
            break
        group, elem, item_length = struct.unpack_from("<HHI", buf, pos)
        item = group << 16 | elem
        if item == SEQUENCE_END:
            break
        if item != ITEM:
            problem = Reason(codes.ENCAPSULATION_INVALID, tag, f"offset {pos} of the "
                             f"encapsulated Pixel Data holds {name(item)}, not an item")
        elif item_length == UNDEFINED:
            problem = Reason(codes.ENCAPSULATION_INVALID, tag, f"the pixel data item at offset "
                             f"{pos} has an undefined length")
        elif pos + 8 + item_length > end:
            problem = _truncated(tag, pos + 8, item_length, end).reason
        elif len(items) > MAX_FRAGMENTS:
            problem = Reason(codes.HEADER_TOO_LARGE, tag, f"more than {MAX_FRAGMENTS} "
                             "pixel data fragments")
        else:
            items.append(Fragment(pos + 8, item_length))
            pos += 8 + item_length
    if problem is None and not items:
        problem = Reason(codes.ENCAPSULATION_INVALID, tag, "encapsulated Pixel Data has no "
                         "Basic Offset Table item")
    table: tuple[int, ...] = ()
    if items:
        first = items[0]
        if first.length % 4:
            problem = problem or Reason(codes.ENCAPSULATION_INVALID, tag, "the Basic Offset Table "
                                        f"is {first.length} bytes long, not a multiple of 4")
        else:
            count = first.length // 4
            table = struct.unpack_from(f"<{count}I", buf, first.offset)
    if problem is not None:
        parsed.problems.append(problem)
    return PixelData(element, True, table, tuple(items[1:]), complete=problem is None)
