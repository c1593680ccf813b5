"""Checks of the Image Pixel module (PS3.3 C.7.6.3) and of Pixel Data against it.

These are the checks that keep decoders alive: GDCM aborts on a Rows that is not US, and
overruns its buffers when a JPEG-LS or JPEG 2000 codestream is larger than the declared image.
So the attributes must have their VRs and possible values, native pixel data must be as long as
the geometry says, and the header of each compressed frame (as many as :data:`MAX_FRAMES`) must
declare the same rows, columns, components and a bit depth that fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from . import codes, codestreams
from .dictionary import name
from .reader import PIXEL_DATA, Parsed, PixelData
from .syntaxes import JPEG, JPEG_2000, JPEG_LS, RLE
from .verdict import Reason

SAMPLES: Final = 0x00280002
PHOTOMETRIC: Final = 0x00280004
PLANAR: Final = 0x00280006
FRAMES: Final = 0x00280008
ROWS: Final = 0x00280010
COLUMNS: Final = 0x00280011
BITS_ALLOCATED: Final = 0x00280100
BITS_STORED: Final = 0x00280101
HIGH_BIT: Final = 0x00280102
REPRESENTATION: Final = 0x00280103

US_ATTRIBUTES: Final = (SAMPLES, PLANAR, ROWS, COLUMNS, BITS_ALLOCATED, BITS_STORED, HIGH_BIT,
                        REPRESENTATION)
REQUIRED: Final = (SAMPLES, PHOTOMETRIC, ROWS, COLUMNS, BITS_ALLOCATED, BITS_STORED, HIGH_BIT,
                   REPRESENTATION)
PHOTOMETRIC_SAMPLES: Final[dict[str, int]] = {
    "MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "YBR_FULL": 3,
    "YBR_FULL_422": 3, "YBR_PARTIAL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3,
}
MAX_FRAMES: Final = 256
"""Compressed frames whose header is checked (each costs a few hundred bytes of reading)."""


@dataclass(frozen=True)
class Geometry:
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    frames: int


def check(parsed: Parsed) -> list[Reason]:
    reasons: list[Reason] = []
    values: dict[int, int] = {}
    for tag in US_ATTRIBUTES:
        element = parsed.get(tag)
        if element is None:
            continue
        value = parsed.us(element) if element.vr == "US" and element.length == 2 else None
        if value is None:
            shown = parsed.raw(element)[:16].decode("latin_1")
            reasons.append(Reason(codes.PIXEL_VR_INVALID, tag, f"{name(tag)} has VR {element.vr}"
                                  f" and {element.length} bytes ({shown!r}); it must be one US "
                                  "value (2 bytes): decoders abort on anything else"))
        else:
            values[tag] = value
    frames = _frames(parsed, reasons)
    photometric = parsed.text(PHOTOMETRIC)
    pixel = parsed.pixel
    if pixel is not None:
        missing = [tag for tag in REQUIRED if parsed.get(tag) is None]
        for tag in missing:
            reasons.append(Reason(codes.PIXEL_ATTRIBUTE_MISSING, tag, f"Pixel Data is present "
                                  f"but {name(tag)} is missing"))
    reasons.extend(_values(values, photometric))
    if pixel is None or reasons or frames is None:
        return reasons
    geometry = Geometry(values[ROWS], values[COLUMNS], values[SAMPLES], values[BITS_ALLOCATED],
                        values[BITS_STORED], frames)
    if not pixel.encapsulated:
        reasons.extend(_native(parsed, pixel, geometry))
    elif pixel.complete:
        reasons.extend(_encapsulated(parsed, pixel, geometry))
    return reasons


def _frames(parsed: Parsed, reasons: list[Reason]) -> int | None:
    element = parsed.get(FRAMES)
    if element is None:
        return 1
    text = parsed.raw(element).decode("latin_1").strip(" \0")
    if element.vr != "IS":
        reasons.append(Reason(codes.PIXEL_VR_INVALID, FRAMES, f"{name(FRAMES)} has VR "
                              f"{element.vr}; it must be IS"))
        return None
    if not text.isdigit() or int(text) < 1:
        reasons.append(Reason(codes.PIXEL_VALUE_INVALID, FRAMES, f"{name(FRAMES)} is "
                              f"{text[:16]!r}; it must be a whole number of 1 or more"))
        return None
    return int(text)


def _values(values: dict[int, int], photometric: str | None) -> Iterator[Reason]:
    def bad(tag: int, why: str) -> Reason:
        return Reason(codes.PIXEL_VALUE_INVALID, tag, f"{name(tag)} is {values[tag]}: {why}")

    for tag in (ROWS, COLUMNS):
        if values.get(tag) == 0:
            yield bad(tag, "an image has at least one row and one column")
    allocated, stored = values.get(BITS_ALLOCATED), values.get(BITS_STORED)
    if allocated is not None and allocated not in (1, 8, 16, 32, 64):
        yield bad(BITS_ALLOCATED, "it must be 1, 8, 16, 32 or 64")
    if stored is not None and (stored == 0 or (allocated is not None and stored > allocated)):
        yield bad(BITS_STORED, f"it must be 1 to Bits Allocated ({allocated})")
    high = values.get(HIGH_BIT)
    if high is not None and stored is not None and high != stored - 1:
        yield bad(HIGH_BIT, f"it must be Bits Stored - 1 ({stored - 1})")
    if values.get(REPRESENTATION, 0) not in (0, 1):
        yield bad(REPRESENTATION, "it must be 0 (unsigned) or 1 (two's complement)")
    samples = values.get(SAMPLES)
    if samples is not None and samples not in (1, 3):
        yield bad(SAMPLES, "it must be 1 or 3")
    if values.get(PLANAR, 0) not in (0, 1):
        yield bad(PLANAR, "it must be 0 (colour-by-pixel) or 1 (colour-by-plane)")
    if photometric is not None:
        expected = PHOTOMETRIC_SAMPLES.get(photometric)
        if expected is None:
            yield Reason(codes.PHOTOMETRIC_INVALID, PHOTOMETRIC, f"{name(PHOTOMETRIC)} "
                         f"{photometric[:20]!r} is not one the archive accepts "
                         f"({', '.join(PHOTOMETRIC_SAMPLES)})")
        elif samples in (1, 3) and samples != expected:
            yield Reason(codes.PHOTOMETRIC_INVALID, PHOTOMETRIC, f"{name(PHOTOMETRIC)} "
                         f"{photometric} needs {expected} sample(s) per pixel, not {samples}")


def _native(parsed: Parsed, pixel: PixelData, g: Geometry) -> Iterator[Reason]:
    element = pixel.element
    if parsed.syntax is not None and parsed.syntax.codec is not None:
        yield Reason(codes.ENCAPSULATION_INVALID, PIXEL_DATA, "Pixel Data has a defined length "
                     f"({element.length}) in a compressed transfer syntax; it must be "
                     "encapsulated (PS3.5 A.4)")
        return
    if element.vr not in ("OB", "OW"):
        yield Reason(codes.PIXEL_VR_INVALID, PIXEL_DATA, f"Pixel Data has VR {element.vr}; "
                     "native pixel data is OB or OW")
        return
    bits = g.rows * g.columns * g.frames * g.samples * g.bits_allocated
    expected = (bits + 7) // 8
    if element.length < expected:
        yield Reason(codes.PIXEL_DATA_SHORT, PIXEL_DATA, f"Pixel Data is {element.length} bytes; "
                     f"{g.rows} rows x {g.columns} columns x {g.frames} frame(s) x {g.samples} "
                     f"sample(s) x {g.bits_allocated} bits need {expected}")


def _encapsulated(parsed: Parsed, pixel: PixelData, g: Geometry) -> Iterator[Reason]:
    fragments = pixel.fragments
    if not fragments:
        yield Reason(codes.ENCAPSULATION_INVALID, PIXEL_DATA, "encapsulated Pixel Data has an "
                     "offset table but no fragment")
        return
    base = fragments[0].offset - 8  # offsets count from the first fragment's item tag
    starts = {fragment.offset - 8 - base: index for index, fragment in enumerate(fragments)}
    table = pixel.offset_table
    if table:
        if len(table) != g.frames:
            yield Reason(codes.FRAME_COUNT_MISMATCH, PIXEL_DATA, f"the Basic Offset Table has "
                         f"{len(table)} entries for {g.frames} frame(s)")
            return
        unknown = [offset for offset in table if offset not in starts]
        if unknown or list(table) != sorted(set(table)):
            yield Reason(codes.ENCAPSULATION_INVALID, PIXEL_DATA, "the Basic Offset Table "
                         "does not point at ascending fragment starts (first bad entry "
                         f"{unknown[0] if unknown else table[0]})")
            return
        first_fragments = [starts[offset] for offset in table]
    elif len(fragments) < g.frames:
        yield Reason(codes.FRAME_COUNT_MISMATCH, PIXEL_DATA, f"{g.frames} frames declared but "
                     f"only {len(fragments)} fragment(s) (each frame needs at least one)")
        return
    elif len(fragments) == g.frames:
        first_fragments = list(range(g.frames))
    else:
        first_fragments = [0]  # several fragments per frame, no table: only frame 1 is known
    codec = parsed.syntax.codec if parsed.syntax is not None else None
    for frame, index in enumerate(first_fragments[:MAX_FRAMES]):
        fragment = fragments[index]
        data = parsed.buffer[fragment.offset:fragment.offset + fragment.length]
        reason = _codestream(codec, data, g, frame + 1)
        if reason is not None:
            yield reason
            return


def _codestream(codec: str | None, data: memoryview, g: Geometry, frame: int) -> Reason | None:
    where = f"frame {frame}"
    if codec == RLE:
        segments = codestreams.rle_segments(data)
        if isinstance(segments, str):
            return Reason(codes.CODESTREAM_INVALID, PIXEL_DATA, f"{where}: {segments}")
        expected = g.samples * ((g.bits_allocated + 7) // 8)
        if segments != expected:
            return Reason(codes.CODESTREAM_MISMATCH, PIXEL_DATA, f"{where}: the RLE header has "
                          f"{segments} segment(s); {g.samples} sample(s) of {g.bits_allocated} "
                          f"bits need {expected}")
        return None
    readers = {JPEG: codestreams.jpeg, JPEG_LS: codestreams.jpeg_ls,
               JPEG_2000: codestreams.jpeg_2000}
    reader = readers.get(codec or "")
    if reader is None:
        return None
    found = reader(data)
    if isinstance(found, str):
        return Reason(codes.CODESTREAM_INVALID, PIXEL_DATA, f"{where}: {found}")
    mismatches = []
    if (found.rows, found.columns) != (g.rows, g.columns):
        mismatches.append(f"{found.rows} rows x {found.columns} columns, the data set says "
                          f"{g.rows} x {g.columns}")
    if found.components != g.samples:
        mismatches.append(f"{found.components} component(s), the data set says {g.samples} "
                          "sample(s) per pixel")
    if not g.bits_stored <= found.precision <= g.bits_allocated:
        mismatches.append(f"{found.precision}-bit samples, the data set says "
                          f"{g.bits_stored} stored in {g.bits_allocated} allocated")
    if mismatches:
        return Reason(codes.CODESTREAM_MISMATCH, PIXEL_DATA, f"{where}: its {found.marker} "
                      f"header declares {'; '.join(mismatches)}")
    return None

