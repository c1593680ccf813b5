"""A corpus of bad (and of odd but legal) DICOM input for the ingest gate (issue 7).

Every case is generated here, from :mod:`archive_tools.synthetic` images written by pydicom,
transcoded with :func:`testkit.dicom_data.encode` where a codec is needed, and then edited byte
by byte: nothing is downloaded. Each :class:`Case` says what the gate must do with it (the
action) and which reason codes must be among its reasons. :func:`corpus` builds them all;
:func:`bad_cases` and :func:`good_cases` split them.

The edits work on Explicit VR Little Endian bytes (or Implicit, where said) and find elements by
their tag and VR bytes in the header, before Pixel Data, where the small synthetic files have no
other match (``_locate`` checks that the match is unique).
"""

from __future__ import annotations

import copy
import io
import json
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from archive_gate import codes
from archive_gate.verdict import Action
from archive_tools import synthetic
from testkit import dcmtk
from testkit import dicom_data

ACCEPT, REPAIR, QUARANTINE = Action.ACCEPT, Action.REPAIR, Action.QUARANTINE
DEFLATED_LE: Final = "1.2.840.10008.1.2.1.99"
COMPRESSED: Final = (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
                     JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless)
"""Every encapsulated transfer syntax the archive accepts."""

_LONG_VRS: Final = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT",
                    b"SV", b"UV"}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    data: bytes
    action: Action
    codes: frozenset[str] = frozenset()
    """Codes that must be among the verdict's reasons (empty for accepted cases)."""


# --- bytes of elements ---------------------------------------------------------------------------

def element(tag: int, vr: str, value: bytes) -> bytes:
    """An Explicit VR Little Endian element, value as given (no padding added)."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode()
    if vr.encode() in _LONG_VRS:
        return head + struct.pack("<HI", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def implicit_element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def text(value: str, encoding: str = "ascii") -> bytes:
    raw = value.encode(encoding)
    return raw + b" " if len(raw) % 2 else raw


def uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def _header_end(data: bytes) -> int:
    """Where Pixel Data's element starts (the end of the data when there is none)."""
    found = data.find(b"\xe0\x7f\x10\x00", 132)
    return found if found >= 0 else len(data)


def _locate(data: bytes, tag: int, *, implicit: bool = False) -> tuple[int, int]:
    """(start, end) of the one top-level element ``tag`` before Pixel Data."""
    key = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    limit = _header_end(data)
    hits = [m.start() for m in re.finditer(re.escape(key), data[:limit])
            if implicit or data[m.start() + 4:m.start() + 6].isalpha()]
    hits = [hit for hit in hits if hit >= 132 or tag >> 16 == 2]
    if len(hits) != 1:
        raise AssertionError(f"tag {tag:08X} found {len(hits)} times in the header")
    start = hits[0]
    if implicit:
        (length,) = struct.unpack_from("<I", data, start + 4)
        return start, start + 8 + length
    if data[start + 4:start + 6] in _LONG_VRS:
        (length,) = struct.unpack_from("<I", data, start + 8)
        return start, start + 12 + length
    (length,) = struct.unpack_from("<H", data, start + 6)
    return start, start + 8 + length


def replace(data: bytes, tag: int, new: bytes, *, implicit: bool = False) -> bytes:
    """``data`` with element ``tag`` replaced by the bytes ``new`` (b"" deletes it)."""
    start, end = _locate(data, tag, implicit=implicit)
    return data[:start] + new + data[end:]


def insert_before(data: bytes, tag: int, new: bytes) -> bytes:
    start, _ = _locate(data, tag)
    return data[:start] + new + data[start:]


def insert_before_pixels(data: bytes, new: bytes) -> bytes:
    at = _header_end(data)
    return data[:at] + new + data[at:]


def set_value(data: bytes, tag: int, vr: str, value: bytes) -> bytes:
    return replace(data, tag, element(tag, vr, value))


def strip_preamble(data: bytes) -> bytes:
    return data[132:]


def strip_meta(data: bytes) -> bytes:
    """The bare data set: no preamble, no file meta (its group length says where it ends)."""
    (group_length,) = struct.unpack_from("<I", data, 132 + 8)
    return data[132 + 12 + group_length:]


def set_transfer_syntax(data: bytes, syntax: str) -> bytes:
    """Relabel the file meta's Transfer Syntax UID (fixing the meta group length)."""
    start, end = _locate(data, 0x00020010)
    new = element(0x00020010, "UI", uid(syntax))
    data = data[:start] + new + data[end:]
    (group_length,) = struct.unpack_from("<I", data, 140)
    return data[:140] + struct.pack("<I", group_length + len(new) - (end - start)) + data[144:]


# --- encapsulated pixel data ---------------------------------------------------------------------

@dataclass(frozen=True)
class Encapsulated:
    prefix: bytes
    """Everything before the first item of Pixel Data (its element header included)."""
    table: bytes
    fragments: list[bytes]

    def build(self, *, table: bytes | None = None, fragments: list[bytes] | None = None) -> bytes:
        out = bytearray(self.prefix)
        value = self.table if table is None else table
        out += struct.pack("<HHI", 0xFFFE, 0xE000, len(value)) + value
        for fragment in self.fragments if fragments is None else fragments:
            out += struct.pack("<HHI", 0xFFFE, 0xE000, len(fragment)) + fragment
        out += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return bytes(out)


def split_encapsulated(data: bytes) -> Encapsulated:
    match = re.search(rb"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff", data)
    if match is None:
        raise AssertionError("no encapsulated Pixel Data")
    pos = match.end()
    items = []
    while True:
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        if (group, elem) == (0xFFFE, 0xE0DD):
            break
        items.append(data[pos + 8:pos + 8 + length])
        pos += 8 + length
    return Encapsulated(data[:match.end()], items[0], items[1:])


def offset_table(fragments: list[bytes]) -> bytes:
    offsets, at = [], 0
    for fragment in fragments:
        offsets.append(at)
        at += 8 + len(fragment)
    return struct.pack(f"<{len(offsets)}I", *offsets)


def jp2_wrap(codestream: bytes, rows: int, columns: int, components: int, depth: int) -> bytes:
    """A JP2 file (ISO/IEC 15444-1 annex I) around a JPEG 2000 codestream."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ihdr = struct.pack(">IIHBBBB", rows, columns, components, depth - 1, 7, 0, 0)
    colr = struct.pack(">BBBI", 1, 0, 0, 17 if components == 1 else 16)
    return (box(b"jP  ", b"\r\n\x87\n") + box(b"ftyp", b"jp2 \0\0\0\0jp2 ")
            + box(b"jp2h", box(b"ihdr", ihdr) + box(b"colr", colr)) + box(b"jp2c", codestream))


# --- the sources ----------------------------------------------------------------------------------

class Sources:
    """The valid files the cases are made from (generated once, in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ct_ds = synthetic.ct_volume(slices=1, rows=16, columns=16, seed=7)[0]
        self.ct = synthetic.to_bytes(self.ct_ds)
        self.ct_path = self._write("ct", self.ct)
        self._encoded: dict[tuple[str, str], bytes] = {}

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / f"{name}.dcm"
        path.write_bytes(data)
        return path

    def dataset(self) -> Dataset:
        return copy.deepcopy(self.ct_ds)

    def encoded(self, syntax: str, source: str = "ct") -> bytes:
        key = (source, syntax)
        if key not in self._encoded:
            src = self.ct_path if source == "ct" else self.folder / f"{source}.dcm"
            out = dicom_data.encode(src, self.folder / f"{source}-{syntax}.dcm", syntax)
            self._encoded[key] = out.read_bytes()
        return self._encoded[key]

    def source(self, name: str, ds: Dataset) -> bytes:
        data = synthetic.to_bytes(ds)
        self._write(name, data)
        return data

    def latin1(self) -> bytes:
        """The CT labelled ISO_IR 100, its text ASCII but for a German patient name."""
        ds = self.dataset()
        for item in ds:
            if item.VR in ("PN", "LO", "SH", "ST", "LT") and not str(item.value).isascii():
                item.value = "Synthetic"
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jürgen"
        return self.source("latin1", ds)

    def deflated(self, name: str, data: bytes) -> bytes:
        src = self._write(name, data)
        out = self.folder / f"{name}-deflated.dcm"
        dcmtk.run("dcmconv", "+td", str(src), str(out))
        return out.read_bytes()


# --- the cases ------------------------------------------------------------------------------------

CaseMaker = Callable[[Sources], Iterator[Case]]
PATIENT_ID, PATIENT_NAME, SOP_INSTANCE, SOP_CLASS = 0x00100020, 0x00100010, 0x00080018, 0x00080016
STUDY_UID, SERIES_UID, CHARSET = 0x0020000D, 0x0020000E, 0x00080005
ROWS, COLUMNS, BITS_ALLOCATED, BITS_STORED, HIGH_BIT = (0x00280010, 0x00280011, 0x00280100,
                                                        0x00280101, 0x00280102)
SAMPLES, PHOTOMETRIC, REPRESENTATION, FRAMES = 0x00280002, 0x00280004, 0x00280103, 0x00280008


def _q(name: str, description: str, data: bytes, *expected: str) -> Case:
    return Case(name, description, data, QUARANTINE, frozenset(expected))


def _not_dicom(_: Sources) -> Iterator[Case]:
    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (16, 16), 128).save(png, format="PNG")
    yield _q("empty", "a zero-length body", b"", codes.EMPTY)
    yield _q("png", "a PNG image sent as an instance", png.getvalue(), codes.NOT_DICOM)
    yield _q("json", "a DICOM JSON document instead of Part 10",
             json.dumps({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "张^伟"}]}},
                        ensure_ascii=False).encode(), codes.NOT_DICOM)
    yield _q("random", "4 KiB of random bytes", random.Random(7).randbytes(4096),
             codes.NOT_DICOM)
    yield _q("html", "an HTML error page", b"<html><body>502 Bad Gateway</body></html>\n",
             codes.NOT_DICOM)
    yield _q("multipart", "a whole multipart/related body instead of one part",
             b"--boundary\r\nContent-Type: application/dicom\r\n\r\n\0\0\0", codes.NOT_DICOM)
    yield _q("preamble-only", "128 zero bytes, not even DICM", b"\0" * 128, codes.NOT_DICOM)
    yield _q("dicm-only", "a preamble and DICM, nothing else", b"\0" * 128 + b"DICM",
             codes.TRANSFER_SYNTAX_MISSING, codes.REQUIRED_MISSING)


def _truncations(s: Sources) -> Iterator[Case]:
    ct = s.ct
    pixel = _header_end(ct)
    name_start, name_end = _locate(ct, PATIENT_NAME)
    yield _q("truncated-meta", "cut inside the file meta information", ct[:150], codes.TRUNCATED)
    yield _q("truncated-element-header", "cut in the middle of an element header",
             ct[:name_start + 3], codes.TRUNCATED)
    yield _q("truncated-value", "cut inside the Patient's Name value", ct[:name_end - 2],
             codes.TRUNCATED)
    yield _q("truncated-pixel-header", "cut inside the Pixel Data element header",
             ct[:pixel + 6], codes.TRUNCATED)
    yield _q("truncated-pixels", "cut half way through Pixel Data", ct[:(pixel + len(ct)) // 2],
             codes.TRUNCATED)
    yield _q("truncated-last-byte", "one byte short", ct[:-1], codes.TRUNCATED)
    meta_end = 132 + 12 + struct.unpack_from("<I", ct, 140)[0]
    yield _q("truncated-after-meta", "the file meta information and nothing else",
             ct[:meta_end], codes.REQUIRED_MISSING)
    ds = s.dataset()
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence = Sequence([item, copy.deepcopy(item)])
    with_sequence = s.source("with-sequence", ds)
    start, _ = _locate(with_sequence, 0x00081140)
    yield _q("truncated-sequence", "cut inside an undefined-length sequence",
             with_sequence[:start + 40], codes.TRUNCATED)
    jpeg = s.encoded(JPEGLSLossless)
    yield _q("truncated-encapsulated", "a JPEG-LS file cut inside its only fragment",
             jpeg[:len(jpeg) - 40], codes.TRUNCATED)


def _lengths(s: Sources) -> Iterator[Case]:
    ct = s.ct
    yield _q("length-odd", "Patient ID with an odd value length (3)",
             set_value(ct, PATIENT_ID, "LO", b"ABC"), codes.LENGTH_ODD)
    start, _ = _locate(ct, 0x00081030)  # StudyDescription
    beyond = ct[:start + 6] + struct.pack("<H", 0xFFF0) + ct[start + 8:]
    yield _q("length-beyond-end", "Study Description declares 65520 bytes", beyond[:start + 400],
             codes.TRUNCATED)
    undefined_ob = insert_before_pixels(ct, element(0x00291010, "OB", b"")[:-4]
                                 + b"\xff\xff\xff\xff")
    undefined_ob = insert_before(undefined_ob, 0x00291010, element(0x00290010, "LO",
                                                                   text("ACME 1.0")))
    yield _q("length-undefined-ob", "a private OB element with length FFFFFFFF",
             undefined_ob, codes.LENGTH_UNDEFINED)
    pixel = _header_end(ct)
    native_undefined = ct[:pixel + 8] + b"\xff\xff\xff\xff" + ct[pixel + 12:]
    yield _q("length-undefined-native-pixels",
             "native Pixel Data with length FFFFFFFF in Explicit VR Little Endian",
             native_undefined, codes.ENCAPSULATION_INVALID)
    tiny = ct[:pixel + 8] + struct.pack("<I", 0xFFFFFFF0) + ct[pixel + 12:pixel + 12 + 16]
    yield _q("huge-declared-length", f"a {len(tiny)}-byte file whose Pixel Data declares 4 GiB",
             tiny, codes.TRUNCATED)
    implicit = s.encoded(ImplicitVRLittleEndian)
    start, _ = _locate(implicit, PATIENT_ID, implicit=True)
    huge = implicit[:start + 4] + struct.pack("<I", 0x7FFFFFF0) + implicit[start + 8:]
    yield _q("implicit-huge-length", "Implicit VR: Patient ID declares 2 GiB", huge,
             codes.TRUNCATED)


def _vrs(s: Sources) -> Iterator[Case]:
    ct = s.ct
    yield _q("rows-ds", 'Rows as DS "8.5" (GDCM aborts decoding it)',
             set_value(ct, ROWS, "DS", b"8.5 "), codes.PIXEL_VR_INVALID)
    yield _q("rows-ss", "Rows as SS", set_value(ct, ROWS, "SS", us(16)), codes.PIXEL_VR_INVALID)
    yield _q("rows-ul", "Rows as UL (4 bytes)", set_value(ct, ROWS, "UL", struct.pack("<I", 16)),
             codes.PIXEL_VR_INVALID)
    implicit = s.encoded(ImplicitVRLittleEndian)
    yield _q("rows-implicit-text", 'Implicit VR: Rows holds the 4 bytes "8.5 "',
             replace(implicit, ROWS, implicit_element(ROWS, b"8.5 "), implicit=True),
             codes.PIXEL_VR_INVALID)
    yield _q("bits-allocated-ob", "Bits Allocated as OB",
             set_value(ct, BITS_ALLOCATED, "OB", us(16)), codes.PIXEL_VR_INVALID)
    start, _ = _locate(ct, 0x00080060)  # Modality
    yield _q("vr-garbage", 'Modality with VR bytes "zz"', ct[:start + 4] + b"zz" + ct[start + 6:],
             codes.VR_INVALID)
    frames = insert_before(ct, ROWS, element(FRAMES, "US", us(1)))
    yield _q("frames-us", "Number of Frames as US", frames, codes.PIXEL_VR_INVALID)
    frames = insert_before(ct, ROWS, element(FRAMES, "IS", b"2.5 "))
    yield _q("frames-fraction", 'Number of Frames "2.5"', frames, codes.PIXEL_VALUE_INVALID,
             codes.NUMBER_INVALID)


def _pixel_values(s: Sources) -> Iterator[Case]:
    ct = s.ct
    for name, tag, value, what in (
            ("bits-allocated-12", BITS_ALLOCATED, 12, "Bits Allocated 12"),
            ("bits-stored-17", BITS_STORED, 17, "Bits Stored 17 in 16 allocated"),
            ("high-bit-wrong", HIGH_BIT, 15, "High Bit 15 with 12 bits stored"),
            ("samples-2", SAMPLES, 2, "Samples per Pixel 2"),
            ("rows-0", ROWS, 0, "Rows 0"),
            ("pixel-representation-2", REPRESENTATION, 2, "Pixel Representation 2")):
        yield _q(name, what, set_value(ct, tag, "US", us(value)), codes.PIXEL_VALUE_INVALID)
    yield _q("photometric-unknown", 'Photometric Interpretation "ARGB"',
             set_value(ct, PHOTOMETRIC, "CS", b"ARGB"), codes.PHOTOMETRIC_INVALID)
    yield _q("photometric-rgb-mono", "RGB with one sample per pixel",
             set_value(ct, PHOTOMETRIC, "CS", b"RGB "), codes.PHOTOMETRIC_INVALID)
    yield _q("pixel-data-short", "Rows 32 with pixel data for 16 rows",
             set_value(ct, ROWS, "US", us(32)), codes.PIXEL_DATA_SHORT)
    yield _q("pixel-attribute-missing", "Bits Allocated missing",
             replace(ct, BITS_ALLOCATED, b""), codes.PIXEL_ATTRIBUTE_MISSING)
    frames = insert_before(ct, ROWS, element(FRAMES, "IS", b"4 "))
    yield _q("frames-short", "4 frames declared, pixel data for 1", frames,
             codes.PIXEL_DATA_SHORT)


def _identifiers(s: Sources) -> Iterator[Case]:
    ct = s.ct
    for name, tag in (("sop-instance-missing", SOP_INSTANCE), ("study-missing", STUDY_UID),
                      ("sop-class-missing", SOP_CLASS)):
        yield _q(name, f"no {name.rsplit('-', 1)[0]} UID", replace(ct, tag, b""),
                 codes.REQUIRED_MISSING)
    yield _q("series-empty", "Series Instance UID present but empty",
             set_value(ct, SERIES_UID, "UI", b""), codes.REQUIRED_MISSING)
    for name, value in (("uid-letters", "1.2.840.abc.1"), ("uid-leading-zero", "1.2.840.012.1"),
                        ("uid-too-long", "1.2." + "9" * 62), ("uid-empty-component", "1.2..3"),
                        ("uid-trailing-dot", "1.2.840.10008.")):
        yield _q(name, f"SOP Instance UID {value!r}", set_value(ct, SOP_INSTANCE, "UI",
                                                                uid(value)), codes.UID_INVALID)
    yield _q("transfer-syntax-unknown", "Transfer Syntax UID 1.2.3.4 (no such syntax)",
             set_transfer_syntax(ct, "1.2.3.4"), codes.TRANSFER_SYNTAX_UNSUPPORTED)
    start, end = _locate(ct, 0x00020010)
    no_ts = ct[:start] + ct[end:]
    (group_length,) = struct.unpack_from("<I", no_ts, 140)
    no_ts = no_ts[:140] + struct.pack("<I", group_length - (end - start)) + no_ts[144:]
    yield _q("transfer-syntax-missing", "file meta without Transfer Syntax UID", no_ts,
             codes.TRANSFER_SYNTAX_MISSING)
    meta_vr = ct[:132 + 4] + b"\x01\x02" + ct[132 + 6:]
    yield _q("meta-garbage-vr", "file meta group length with VR bytes 01 02", meta_vr,
             codes.META_INVALID)


def _values(s: Sources) -> Iterator[Case]:
    ct = s.ct
    yield _q("patient-id-300", "Patient ID of 300 characters (LO allows 64)",
             set_value(ct, PATIENT_ID, "LO", b"P" * 300), codes.VALUE_TOO_LONG)
    yield _q("patient-name-group-70", "a Patient's Name component group of 70 characters",
             set_value(ct, PATIENT_NAME, "PN", text("Zhang^" + "W" * 64, "utf-8")),
             codes.VALUE_TOO_LONG)
    yield _q("accession-17", "Accession Number (SH) of 17 characters",
             set_value(ct, 0x00080050, "SH", text("A" * 17)), codes.VALUE_TOO_LONG)
    yield _q("modality-17", "Modality (CS) of 17 characters",
             set_value(ct, 0x00080060, "CS", text("C" * 17)), codes.VALUE_TOO_LONG)
    yield _q("date-too-long", 'Study Date "2024-01-01T00" (DA is 8)',
             set_value(ct, 0x00080020, "DA", b"2024-01-01T0"), codes.VALUE_TOO_LONG)
    yield _q("time-too-long", "Study Time of 20 characters",
             set_value(ct, 0x00080030, "TM", b"101010.1234567890123"), codes.VALUE_TOO_LONG)
    yield _q("patient-id-nul", "a NUL inside Patient ID (indexes cut it there)",
             set_value(ct, PATIENT_ID, "LO", b"AB\0CD "), codes.VALUE_NUL)
    yield _q("patient-name-nul", "a NUL inside Patient's Name",
             set_value(ct, PATIENT_NAME, "PN", "张\0伟".encode() + b" "), codes.VALUE_NUL)
    yield _q("instance-number-text", 'Instance Number "abc"',
             set_value(ct, 0x00200013, "IS", b"abc "), codes.NUMBER_INVALID)
    yield _q("slice-thickness-comma", 'Slice Thickness "1,5"',
             set_value(ct, 0x00180050, "DS", b"1,5 "), codes.NUMBER_INVALID)
    yield _q("modality-latin1", "Modality (CS) holding the byte E9",
             set_value(ct, 0x00080060, "CS", b"CT\xe9 "), codes.VALUE_CHARACTERS)
    yield _q("patient-id-un-nul", "Patient ID sent as UN, with a NUL inside",
             set_value(ct, PATIENT_ID, "UN", b"AB\0CD "), codes.VALUE_NUL)
    yield _q("description-bell", "Study Description holding a BEL control byte",
             set_value(ct, 0x00081030, "LO", b"CHEST\x07"), codes.VALUE_CHARACTERS)


def _structure(s: Sources) -> Iterator[Case]:
    ct = s.ct
    name_start, name_end = _locate(ct, PATIENT_NAME)
    patient_name = ct[name_start:name_end]
    moved = ct[:name_start] + ct[name_end:]
    yield _q("tags-out-of-order", "Patient's Name moved after the image pixel module",
             insert_before_pixels(moved, patient_name), codes.TAG_ORDER)
    yield _q("tag-twice", "Patient ID twice",
             insert_before(ct, PATIENT_ID, element(PATIENT_ID, "LO", text("DUP"))),
             codes.TAG_ORDER)
    ds = s.dataset()
    item = Dataset()
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence = Sequence([item])
    with_sequence = s.source("bad-item", ds)
    start, _ = _locate(with_sequence, 0x00081140)
    item_at = start + 12
    assert with_sequence[item_at:item_at + 4] == b"\xfe\xff\x00\xe0"
    yield _q("sequence-bad-item", "a sequence whose item tag is (FFFE,E0E0)",
             with_sequence[:item_at] + b"\xfe\xff\xe0\xe0" + with_sequence[item_at + 4:],
             codes.SEQUENCE_INVALID)
    deep = s.dataset()
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = deep.SOPInstanceUID
    for _ in range(20):
        outer = Dataset()
        outer.ReferencedImageSequence = Sequence([inner])
        inner = outer
    deep.ReferencedImageSequence = inner.ReferencedImageSequence
    yield _q("sequence-too-deep", "sequences nested 21 deep", s.source("deep", deep),
             codes.SEQUENCE_INVALID)
    yield _q("item-at-top-level", "an item delimitation tag among the top-level elements",
             insert_before(ct, PATIENT_NAME, struct.pack("<HHI", 0xFFFE, 0xE00D, 0)),
             codes.SEQUENCE_INVALID)
    private = b"".join(element(0x70010000 | 0x1000 | i, "UN", b"") for i in range(0x0F00))
    private += b"".join(element(0x70030000 | i, "UN", b"") for i in range(0x10000))
    yield _q("too-many-elements", "69376 empty private elements before Pixel Data",
             insert_before_pixels(ct, private), codes.HEADER_TOO_LARGE)
    meta_end = 132 + 12 + struct.unpack_from("<I", ct, 140)[0]
    deflated = set_transfer_syntax(ct[:meta_end], DEFLATED_LE)
    yield _q("deflate-garbage", "deflated transfer syntax, data set not deflated",
             deflated + b"\xff" * 64, codes.DEFLATE_INVALID)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b"\0" * (65 << 20)) + bomb.flush()
    yield _q("deflate-bomb", f"{len(payload)} deflated bytes that inflate to 65 MiB",
             deflated + payload, codes.DEFLATE_INVALID)


def _charsets(s: Sources) -> Iterator[Case]:
    gb = s.source("gb18030", synthetic.ct_volume(slices=1, rows=16, columns=16, seed=8,
                                                  charset="GB18030")[0])
    yield Case("gb18030-as-latin1", "GB18030 text labelled ISO_IR 100: relabelled GB18030",
               set_value(gb, CHARSET, "CS", b"ISO_IR 100"), REPAIR,
               frozenset({codes.CHARSET_RELABELLED}))
    yield Case("gb18030-unlabelled", "GB18030 text and no Specific Character Set",
               replace(gb, CHARSET, b""), REPAIR, frozenset({codes.CHARSET_RELABELLED}))
    yield Case("gb18030-as-utf8", "GB18030 text labelled ISO_IR 192 (not valid UTF-8)",
               set_value(gb, CHARSET, "CS", b"ISO_IR 192"), REPAIR,
               frozenset({codes.CHARSET_RELABELLED}))
    yield Case("gb18030-as-gb2312", 'GB18030 text labelled "GB2312" (not a DICOM term)',
               set_value(gb, CHARSET, "CS", b"GB2312"), REPAIR,
               frozenset({codes.CHARSET_RELABELLED}))
    yield _q("charset-unknown", 'Specific Character Set "ISO_IR 999"',
             set_value(s.ct, CHARSET, "CS", b"ISO_IR 999"), codes.CHARSET_UNKNOWN)
    yield _q("utf8-invalid", "invalid UTF-8 bytes in Patient's Name under ISO_IR 192",
             set_value(s.ct, PATIENT_NAME, "PN", b"Li\xff\xfeNa"), codes.CHARSET_MISMATCH)
    yield _q("latin1-unlabelled", "Latin-1 Patient's Name without Specific Character Set",
             replace(s.latin1(), CHARSET, b""), codes.CHARSET_MISMATCH)
    mislabelled = set_value(gb, CHARSET, "CS", b"ISO_IR 100")
    yield _q("gb18030-as-latin1-deflated", "GB18030 under ISO_IR 100, deflated: cannot be edited",
             s.deflated("gb-latin1", mislabelled), codes.CHARSET_RELABELLED,
             codes.REPAIR_IMPOSSIBLE)
    yield _q("gb18030-as-latin1-and-long-id", "repairable charset but also a 300-char Patient ID",
             set_value(mislabelled, PATIENT_ID, "LO", b"P" * 300), codes.CHARSET_RELABELLED,
             codes.VALUE_TOO_LONG)


def _compressed(s: Sources) -> Iterator[Case]:
    for syntax in COMPRESSED:
        label = dicom_data.ENCODINGS[syntax].name
        short = syntax.rsplit(".", 2)[-2:]
        tag = "-".join(short)
        enc = split_encapsulated(s.encoded(syntax))
        first = enc.fragments[0]
        broken = [b"\0" * 16 + first[16:], *enc.fragments[1:]]
        yield _q(f"corrupt-header-{tag}", f"{label}: the first 16 bytes of the frame zeroed",
                 enc.build(fragments=broken), codes.CODESTREAM_INVALID)
        if syntax == RLELossless:
            rgb = set_value(set_value(enc.build(), SAMPLES, "US", us(3)), PHOTOMETRIC, "CS",
                            b"RGB ")
            rgb = insert_before(rgb, 0x00280010, element(0x00280006, "US", us(0)))
            yield _q(f"geometry-{tag}", f"{label}: declared RGB, the RLE header has 2 segments",
                     rgb, codes.CODESTREAM_MISMATCH)
        else:
            smaller = set_value(set_value(enc.build(), ROWS, "US", us(8)), COLUMNS, "US", us(8))
            yield _q(f"geometry-{tag}", f"{label}: declared 8x8, the codestream is 16x16",
                     smaller, codes.CODESTREAM_MISMATCH)
    jpeg = split_encapsulated(s.encoded(JPEGBaseline8Bit))
    three = insert_before(jpeg.build(), ROWS, element(FRAMES, "IS", b"3 "))
    yield _q("frames-without-fragments", "3 frames declared, 1 fragment, 1 table entry", three,
             codes.FRAME_COUNT_MISMATCH)
    three_no_table = insert_before(jpeg.build(table=b""), ROWS, element(FRAMES, "IS", b"3 "))
    yield _q("frames-without-fragments-no-table", "3 frames declared, 1 fragment, no table",
             three_no_table, codes.FRAME_COUNT_MISMATCH)
    yield _q("offset-table-wrong-count", "a Basic Offset Table of 2 entries for 1 frame",
             jpeg.build(table=struct.pack("<2I", 0, 0)), codes.FRAME_COUNT_MISMATCH)
    yield _q("offset-table-bad-offset", "a Basic Offset Table pointing inside a fragment",
             jpeg.build(table=struct.pack("<I", 4)), codes.ENCAPSULATION_INVALID)
    yield _q("too-many-fragments", "the frame followed by 140000 empty fragments",
             jpeg.build(fragments=jpeg.fragments + [b""] * 140000), codes.HEADER_TOO_LARGE)
    yield _q("no-fragments", "encapsulated Pixel Data with only the offset table",
             jpeg.build(fragments=[]), codes.ENCAPSULATION_INVALID)
    no_table = jpeg.prefix + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    yield _q("no-offset-table", "encapsulated Pixel Data with no item at all", no_table,
             codes.ENCAPSULATION_INVALID)
    built = jpeg.build()
    fragment_at = len(jpeg.prefix) + 8 + len(jpeg.table)
    undefined = built[:fragment_at + 4] + b"\xff\xff\xff\xff" + built[fragment_at + 8:]
    yield _q("fragment-undefined-length", "a fragment item of length FFFFFFFF", undefined,
             codes.ENCAPSULATION_INVALID)
    yield _q("encapsulated-in-native-syntax", "JPEG fragments labelled Explicit VR Little Endian",
             set_transfer_syntax(built, "1.2.840.10008.1.2.1"), codes.ENCAPSULATION_INVALID)
    yield _q("native-in-compressed-syntax", "native pixels labelled JPEG Baseline",
             set_transfer_syntax(s.ct, JPEGBaseline8Bit), codes.ENCAPSULATION_INVALID)
    yield _q("jpeg-labelled-jpeg-ls", "a JPEG baseline frame labelled JPEG-LS",
             set_transfer_syntax(built, JPEGLSLossless), codes.CODESTREAM_INVALID)
    j2k = split_encapsulated(s.encoded(JPEG2000Lossless))
    wrapped = jp2_wrap(j2k.fragments[0], 16, 16, 1, 16)
    wrapped_small = set_value(j2k.build(fragments=[wrapped]), ROWS, "US", us(8))
    yield _q("jp2-geometry", "a JP2-wrapped JPEG 2000 frame of 16 rows, declared 8",
             wrapped_small, codes.CODESTREAM_MISMATCH)


def _good(s: Sources) -> Iterator[Case]:
    def ok(name: str, description: str, data: bytes) -> Case:
        return Case(name, description, data, ACCEPT)

    ct = s.ct
    yield ok("no-preamble", "file meta without the 128-byte preamble and DICM", strip_preamble(ct))
    yield ok("bare-data-set", "a data set without file meta (Explicit VR LE)", strip_meta(ct))
    implicit = s.encoded(ImplicitVRLittleEndian)
    yield ok("implicit-vr", "Implicit VR Little Endian", implicit)
    yield ok("bare-implicit", "an Implicit VR data set without file meta", strip_meta(implicit))
    yield ok("big-endian", "Explicit VR Big Endian", s.encoded(ExplicitVRBigEndian))
    ds = s.dataset()
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", "private text")
    block.add_new(0x11, "OB", b"\x01\x02\x03\x04")
    block.add_new(0x12, "SQ", Sequence([Dataset()]))
    yield ok("private-tags", "private creator, LO, OB and an empty-item sequence",
             s.source("private", ds))
    ds = s.dataset()
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D3000", "SRT", "胸部"
    ref.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ReferencedImageSequence = Sequence([ref, copy.deepcopy(ref)])
    yield ok("nested-sequences", "undefined-length sequences with nested items",
             s.source("nested", ds))
    yield ok("implicit-nested-sequences", "the same nested sequences in Implicit VR",
             s.encoded(ImplicitVRLittleEndian, "nested"))
    cine = s.source("cine", synthetic.us_cine(frames=3, rows=32, columns=32))
    yield ok("multi-frame-rgb", "3-frame 8-bit RGB ultrasound cine", cine)
    yield ok("multi-frame-jpeg", "the cine in JPEG baseline (YBR_FULL_422, 3 fragments)",
             s.encoded(JPEGBaseline8Bit, "cine"))
    yield ok("rgb-8bit-single", "one 8-bit RGB frame",
             s.source("rgb", synthetic.us_cine(frames=1, rows=32, columns=32)))
    yield ok("gb18030-labelled", "GB18030 text labelled GB18030",
             s.source("gb-good", synthetic.ct_volume(slices=1, rows=16, columns=16, seed=9,
                                                     charset="GB18030")[0]))
    yield ok("utf8-labelled", "UTF-8 Chinese text labelled ISO_IR 192", ct)
    yield ok("latin1-labelled", "a German name in Latin-1, labelled ISO_IR 100", s.latin1())
    yield ok("deflated", "Deflated Explicit VR Little Endian", s.deflated("ct", ct))
    j2k = split_encapsulated(s.encoded(JPEG2000Lossless))
    yield ok("jp2-wrapped", "JPEG 2000 frame inside a JP2 file wrapper",
             j2k.build(fragments=[jp2_wrap(j2k.fragments[0], 16, 16, 1, 16)]))
    jpeg = split_encapsulated(s.encoded(JPEGLossless))
    half = len(jpeg.fragments[0]) // 2 & ~1
    pieces = [jpeg.fragments[0][:half], jpeg.fragments[0][half:]]
    yield ok("frame-in-two-fragments", "one JPEG lossless frame split over two fragments",
             jpeg.build(table=struct.pack("<I", 0), fragments=pieces))
    yield ok("empty-patient-name", "Patient's Name present and empty (type 2)",
             set_value(ct, PATIENT_NAME, "PN", b""))
    yield ok("text-nul-padding", "Patient ID padded with a trailing NUL",
             set_value(ct, PATIENT_ID, "LO", b"SYN001\0\0"))
    yield ok("multi-frame-table", "the cine in RLE with a full offset table",
             s.encoded(RLELossless, "cine"))


MAKERS: Final[tuple[CaseMaker, ...]] = (_not_dicom, _truncations, _lengths, _vrs, _pixel_values,
                                        _identifiers, _values, _structure, _charsets,
                                        _compressed, _good)


def corpus(folder: Path) -> list[Case]:
    """Every case, generated in ``folder`` (about 20 DCMTK/GDCM runs)."""
    sources = Sources(folder)
    cases = [case for maker in MAKERS for case in maker(sources)]
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise AssertionError(f"case names used twice: {sorted(duplicates)}")
    return cases


def bad_cases(cases: list[Case]) -> list[Case]:
    return [case for case in cases if case.action is not ACCEPT]


def good_cases(cases: list[Case]) -> list[Case]:
    return [case for case in cases if case.action is ACCEPT]
