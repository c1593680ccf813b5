"""The headers of compressed frames: what geometry a frame's codestream declares.

Each function reads only the header at the start of one fragment (JPEG and JPEG-LS: the marker
segments up to the frame header, skipped by their lengths; JPEG 2000: SOC and SIZ, after the JP2
boxes when wrapped; RLE: the 64-byte segment table) and returns what it found, or a message
saying why the header is not what the codec needs. Nothing is decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

MAX_SEGMENTS: Final = 256
"""Marker segments (or JP2 boxes) walked before the frame header must have been found."""

_JPEG_FRAMES: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                                 0xCD, 0xCE, 0xCF})
_JPEG_LS_FRAME: Final = 0xF7  # SOF55 (ITU-T T.87)
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length


@dataclass(frozen=True)
class Geometry:
    """What a codestream header declares."""

    rows: int
    columns: int
    components: int
    precision: int
    marker: str
    """Which header said so, e.g. ``SOF3`` or ``SIZ``, for messages."""


def jpeg(fragment: memoryview) -> Geometry | str:
    """The frame header of an ITU-T T.81 (JPEG) codestream."""
    return _marker_frame(fragment, ls=False)


def jpeg_ls(fragment: memoryview) -> Geometry | str:
    """The frame header (SOF55) of an ITU-T T.87 (JPEG-LS) codestream."""
    return _marker_frame(fragment, ls=True)


def _marker_frame(data: memoryview, *, ls: bool) -> Geometry | str:
    codec = "JPEG-LS" if ls else "JPEG"
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return f"the {codec} frame does not start with SOI (FFD8): {bytes(data[:4]).hex(' ')}"
    pos = 2
    for _ in range(MAX_SEGMENTS):
        while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > size or data[pos] != 0xFF:
            return f"the {codec} header is broken at byte {pos} (no marker where one belongs)"
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            return f"the {codec} codestream reaches {'EOI' if marker == 0xD9 else 'SOS'} " \
                   "without a frame header"
        if pos + 4 > size:
            return f"the {codec} header ends inside the marker segment at byte {pos}"
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > size:
            return f"the {codec} marker segment FF{marker:02X} at byte {pos} has length {length}"
        if marker == _JPEG_LS_FRAME or marker in _JPEG_FRAMES:
            if (marker == _JPEG_LS_FRAME) != ls:
                kind = ("a JPEG-LS (SOF55)" if marker == _JPEG_LS_FRAME
                        else f"a JPEG (FF{marker:02X})")
                return f"the frame has {kind} frame header, not what its transfer syntax says"
            if length < 8:
                return f"the {codec} frame header is {length} bytes long, too short"
            precision, rows, columns, components = struct.unpack_from(">BHHB", data, pos + 4)
            label = "SOF55" if ls else f"SOF{marker - 0xC0}"
            return Geometry(rows, columns, components, precision, label)
        pos += 2 + length
    return f"no {codec} frame header in the first {MAX_SEGMENTS} marker segments"


_JP2_SIGNATURE: Final = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def jpeg_2000(fragment: memoryview) -> Geometry | str:
    """SIZ of a JPEG 2000 codestream (ISO/IEC 15444-1 A.5.1), inside a JP2 wrapper or bare."""
    data = fragment
    if bytes(data[:12]) == _JP2_SIGNATURE:
        found = _jp2_codestream(data)
        if isinstance(found, str):
            return found
        data = found
    if len(data) < 4 or bytes(data[:4]) != b"\xff\x4f\xff\x51":
        return "the JPEG 2000 frame does not start with SOC and SIZ (FF4F FF51): " \
               f"{bytes(data[:4]).hex(' ')}"
    if len(data) < 4 + 38:
        return "the JPEG 2000 SIZ marker segment is truncated"
    (lsiz, _rsiz, xsiz, ysiz, xosiz, yosiz, _xt, _yt, _xto, _yto,
     csiz) = struct.unpack_from(">HHIIIIIIIIH", data, 4)
    if csiz == 0 or lsiz != 38 + 3 * csiz or len(data) < 4 + lsiz:
        return f"the JPEG 2000 SIZ segment is inconsistent (Lsiz {lsiz}, Csiz {csiz})"
    if xosiz >= xsiz or yosiz >= ysiz:
        return f"the JPEG 2000 image area is empty (Xsiz {xsiz}, XOsiz {xosiz}, Ysiz {ysiz}, " \
               f"YOsiz {yosiz})"
    depths = [(data[42 + 3 * i] & 0x7F) + 1 for i in range(csiz)]
    return Geometry(ysiz - yosiz, xsiz - xosiz, csiz, max(depths), "SIZ")


def _jp2_codestream(data: memoryview) -> memoryview | str:
    pos, size = 0, len(data)
    for _ in range(MAX_SEGMENTS):
        if pos + 8 > size:
            break
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:
            if pos + 16 > size:
                break
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:
            length = size - pos
        if length < header:
            return f"the JP2 box at byte {pos} has length {length}"
        if kind == b"jp2c":
            return data[pos + header:pos + length]
        pos += length
    return "the JP2 file has no contiguous codestream box (jp2c)"


def rle_segments(fragment: memoryview) -> int | str:
    """The number of segments in an RLE frame's header (PS3.5 G.5), checked for consistency."""
    size = len(fragment)
    if size < 64:
        return f"the RLE frame is {size} bytes long, shorter than its 64-byte header"
    header: tuple[int, ...] = struct.unpack_from("<16I", fragment, 0)
    count = header[0]
    if not 1 <= count <= 15:
        return f"the RLE header declares {count} segments (1 to 15 allowed)"
    offsets = header[1:1 + count]
    if offsets[0] != 64:
        return f"the first RLE segment starts at byte {offsets[0]}, not 64"
    if any(b <= a for a, b in zip(offsets, offsets[1:])) or offsets[-1] >= size:
        return f"the RLE segment offsets {list(offsets)} do not ascend inside the frame " \
               f"({size} bytes)"
    return count
