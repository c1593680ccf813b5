"""Specific Character Set (0008,0005): known terms, text that fits them, and the one repair.

The repair rule. GB18030 text is often sent labelled ISO_IR 100 (or not labelled at all) by
modalities set up for Latin-1. Byte-wise every GB18030 string is "valid Latin-1", so validity
cannot decide; the gate relabels the instance GB18030 when every text value (SH, LO, ST, LT, UT,
UC, PN) that has bytes of 0x80 or more (a) decodes as GB18030, (b) gives only CJK ideographs and
CJK punctuation beyond ASCII, each encoded in two bytes that are both 0x80 or more. (b) is what
real Latin-1 text does not do: an accented letter is followed by an ASCII letter ("Müller" is
``4D FC 6C ...``, and FC 6C would be a GB18030 pair with an ASCII trail byte); and (c) no
single CJK character stands between two ASCII letters (two accented Latin-1 letters in a row,
"Gößmann" = ``47 F6 DF 6D ...``, do make one GB18030 ideograph, but inside a Latin word, where
Chinese text does not put one). The same holds for
GB18030 text labelled UTF-8 (ISO_IR 192) that is not valid UTF-8, and for the labels ``GB2312``
and ``EUC-CN``, which are not DICOM terms but name a subset of GB18030. Relabelling changes one
element and no text byte, so the stored text is what the modality sent, now read right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from . import codes
from .dictionary import CHARSET_TEXT_VRS, name
from .reader import UNDEFINED, Parsed
from .verdict import Reason

SPECIFIC_CHARACTER_SET: Final = 0x00080005
GB18030: Final = "GB18030"

CODECS: Final[dict[str, str]] = {
    "": "ascii", "ISO_IR 6": "ascii",  # ISO_IR 6 is not a defined term but is sent for ASCII
    "ISO_IR 100": "latin_1", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO_IR 144": "iso8859_5", "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7", "ISO_IR 138": "iso8859_8", "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15", "ISO_IR 13": "shift_jis", "ISO_IR 166": "tis_620",
    "ISO_IR 192": "utf_8", "GB18030": "gb18030", "GBK": "gbk",
}
"""Single-byte and multi-byte terms without code extensions (PS3.3 C.12.1.1.2)."""
ISO_2022: Final = frozenset(
    {f"ISO 2022 IR {n}" for n in (6, 100, 101, 109, 110, 144, 127, 126, 138, 148, 203, 13, 166,
                                  87, 159, 149, 58)})
"""Terms with code extensions: text switches sets with escape sequences."""
GB_ALIASES: Final = frozenset({"GB2312", "GB 2312", "EUC-CN", "CHINESE"})
"""Labels that are not DICOM terms but mean a subset of GB18030: relabelled when text fits."""
RELABEL_FROM: Final = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"}) | GB_ALIASES

_HIGH: Final = re.compile(rb"[\x80-\xff]")
_LATIN1_C1: Final = re.compile(rb"[\x80-\x9f]")


@dataclass(frozen=True)
class CharsetCheck:
    terms: tuple[str, ...]
    codec: str
    """The Python codec that decodes the text (after any relabel)."""
    reasons: tuple[Reason, ...] = ()
    relabel_from: str | None = None
    """Set when the instance should be relabelled GB18030: the label it had ("" when none)."""


def _cjk(code: int) -> bool:
    return (0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF
            or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF
            or code in (0x00B7, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026))


def looks_gb18030(raw: bytes) -> bool:
    """True when ``raw`` is GB18030 text by the rule in this module's docstring."""
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return False
    found = False
    for index, char in enumerate(text):
        if ord(char) < 0x80:
            continue
        encoded = char.encode("gb18030")
        if not _cjk(ord(char)) or len(encoded) != 2 or encoded[1] < 0x80:
            return False
        before, after = text[index - 1:index], text[index + 1:index + 2]
        if before.isascii() and before.isalpha() and after.isascii() and after.isalpha():
            return False
        found = True
    return found


def _fits(raw: bytes, codec: str) -> bool:
    if codec == "latin_1":
        return not _LATIN1_C1.search(raw)
    try:
        raw.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def terms_of(parsed: Parsed) -> tuple[str, ...]:
    element = parsed.get(SPECIFIC_CHARACTER_SET)
    if element is None:
        return ()
    text = parsed.raw(element).decode("ascii", "replace")
    return tuple(term.strip(" \0") for term in text.split("\\"))


def check(parsed: Parsed) -> CharsetCheck:
    terms = terms_of(parsed)
    label = terms[0] if len(terms) == 1 else ("" if not terms else "\\".join(terms))
    unknown = [t for t in terms if t not in CODECS and t not in ISO_2022 and t not in GB_ALIASES]
    if unknown:
        return CharsetCheck(terms, "latin_1", (Reason(
            codes.CHARSET_UNKNOWN, SPECIFIC_CHARACTER_SET,
            f"Specific Character Set {label!r}: {', '.join(map(repr, unknown))} is not a DICOM "
            "character set term (PS3.3 C.12.1.1.2)"),))
    if len(terms) > 1 or any(t in ISO_2022 for t in terms):
        return CharsetCheck(terms, _iso_2022_codec(terms))
    texts = [(el.tag, parsed.raw(el)) for el in parsed.elements
             if el.vr in CHARSET_TEXT_VRS and el.length != UNDEFINED]
    high = [(tag, raw) for tag, raw in texts if _HIGH.search(raw)]
    codec = CODECS.get(label, "gb18030")
    misfits = [(tag, raw) for tag, raw in high if label in GB_ALIASES or not _fits(raw, codec)]
    if label in RELABEL_FROM and high and (misfits or codec == "latin_1") and all(
            looks_gb18030(raw) for _, raw in high):
        return CharsetCheck(terms, "gb18030", (Reason(
            codes.CHARSET_RELABELLED, SPECIFIC_CHARACTER_SET,
            f"text in {name(high[0][0])} and {len(high) - 1} other value(s) is GB18030 labelled "
            f"{label or 'nothing (ASCII)'}: relabelled GB18030, text bytes unchanged"),),
            relabel_from=label)
    reasons = tuple(Reason(
        codes.CHARSET_MISMATCH, tag, f"{name(tag)} has bytes that are not valid "
        f"{label or 'ASCII (no Specific Character Set)'}: {raw[:32].hex(' ')}")
        for tag, raw in misfits)
    return CharsetCheck(terms, codec, reasons)


def _iso_2022_codec(terms: tuple[str, ...]) -> str:
    """Best effort for showing names: Python's ISO 2022 codecs cover the common extensions."""
    if "ISO 2022 IR 149" in terms:
        return "iso2022_kr"
    if any(t in ("ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 58") for t in terms):
        return "iso2022_jp_2"
    return "latin_1"


def decode(raw: bytes, codec: str) -> str:
    """Text for showing (identity, messages): never raises."""
    try:
        return raw.decode(codec, "replace")
    except LookupError:
        return raw.decode("latin_1")
