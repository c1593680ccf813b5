"""The gate's reason codes. They are stable: the quarantine stores them, statistics count them,
tests assert them. Add new codes; never rename one. :data:`DESCRIPTIONS` says what each means."""

from __future__ import annotations

from typing import Final

# --- the body and its structure ---------------------------------------------------------------
EMPTY: Final = "EMPTY"
NOT_DICOM: Final = "NOT_DICOM"
META_INVALID: Final = "META_INVALID"
TRANSFER_SYNTAX_MISSING: Final = "TRANSFER_SYNTAX_MISSING"
TRANSFER_SYNTAX_UNSUPPORTED: Final = "TRANSFER_SYNTAX_UNSUPPORTED"
DEFLATE_INVALID: Final = "DEFLATE_INVALID"
TRUNCATED: Final = "TRUNCATED"
LENGTH_ODD: Final = "LENGTH_ODD"
LENGTH_UNDEFINED: Final = "LENGTH_UNDEFINED"
VR_INVALID: Final = "VR_INVALID"
TAG_ORDER: Final = "TAG_ORDER"
SEQUENCE_INVALID: Final = "SEQUENCE_INVALID"
HEADER_TOO_LARGE: Final = "HEADER_TOO_LARGE"
# --- attributes ---------------------------------------------------------------------------------
REQUIRED_MISSING: Final = "REQUIRED_MISSING"
UID_INVALID: Final = "UID_INVALID"
VALUE_TOO_LONG: Final = "VALUE_TOO_LONG"
VALUE_NUL: Final = "VALUE_NUL"
NUMBER_INVALID: Final = "NUMBER_INVALID"
VALUE_CHARACTERS: Final = "VALUE_CHARACTERS"
# --- character sets -----------------------------------------------------------------------------
CHARSET_UNKNOWN: Final = "CHARSET_UNKNOWN"
CHARSET_MISMATCH: Final = "CHARSET_MISMATCH"
CHARSET_RELABELLED: Final = "CHARSET_RELABELLED"
# --- the image pixel module and pixel data ------------------------------------------------------
PIXEL_ATTRIBUTE_MISSING: Final = "PIXEL_ATTRIBUTE_MISSING"
PIXEL_VR_INVALID: Final = "PIXEL_VR_INVALID"
PIXEL_VALUE_INVALID: Final = "PIXEL_VALUE_INVALID"
PHOTOMETRIC_INVALID: Final = "PHOTOMETRIC_INVALID"
PIXEL_DATA_SHORT: Final = "PIXEL_DATA_SHORT"
ENCAPSULATION_INVALID: Final = "ENCAPSULATION_INVALID"
FRAME_COUNT_MISMATCH: Final = "FRAME_COUNT_MISMATCH"
CODESTREAM_INVALID: Final = "CODESTREAM_INVALID"
CODESTREAM_MISMATCH: Final = "CODESTREAM_MISMATCH"
REPAIR_IMPOSSIBLE: Final = "REPAIR_IMPOSSIBLE"

DESCRIPTIONS: Final[dict[str, str]] = {
    EMPTY: "the body has no bytes",
    NOT_DICOM: "the body is neither a DICOM Part 10 file nor a bare DICOM data set",
    META_INVALID: "the file meta information (group 0002) cannot be read",
    TRANSFER_SYNTAX_MISSING: "no Transfer Syntax UID, and the data set needs one",
    TRANSFER_SYNTAX_UNSUPPORTED: "a transfer syntax the archive does not accept",
    DEFLATE_INVALID: "a deflated data set that does not inflate, or inflates too large",
    TRUNCATED: "the data ends inside an element, or a length points past the end",
    LENGTH_ODD: "an element with an odd value length (PS3.5 7.1.1 wants even lengths)",
    LENGTH_UNDEFINED: "undefined length (FFFFFFFF) on an element that cannot have one",
    VR_INVALID: "an explicit VR that is not one of PS3.5's",
    TAG_ORDER: "top-level elements not in ascending tag order, or a tag twice",
    SEQUENCE_INVALID: "a sequence whose items or delimiters are broken, or nested too deep",
    HEADER_TOO_LARGE: "more top-level elements or pixel data fragments than any image has",
    REQUIRED_MISSING: "SOP Class/Instance UID, Study or Series Instance UID missing or empty",
    UID_INVALID: "a UID that is not digits and dots, has a leading zero, or is too long",
    VALUE_TOO_LONG: "a value longer than its VR allows (PS3.5 6.2)",
    VALUE_NUL: "a NUL byte inside a text value (indexes would cut the value there)",
    NUMBER_INVALID: "an IS or DS value that is not a number (DICOMweb JSON cannot carry it)",
    VALUE_CHARACTERS: "bytes outside the default repertoire in a VR that allows no others",
    CHARSET_UNKNOWN: "a Specific Character Set term the archive does not know",
    CHARSET_MISMATCH: "text bytes that are not valid in the declared character set",
    CHARSET_RELABELLED: "GB18030 text under a wrong label: the gate relabels it (a repair)",
    PIXEL_ATTRIBUTE_MISSING: "pixel data without the image pixel attributes it needs",
    PIXEL_VR_INVALID: "an image pixel attribute with the wrong VR or value length",
    PIXEL_VALUE_INVALID: "an image pixel attribute with an impossible value",
    PHOTOMETRIC_INVALID: "an unknown photometric interpretation, or one that contradicts samples",
    PIXEL_DATA_SHORT: "native pixel data shorter than rows x columns x frames x samples x bits",
    ENCAPSULATION_INVALID: "encapsulated pixel data whose items are broken or absent",
    FRAME_COUNT_MISMATCH: "the frames declared do not match the fragments or offset table",
    CODESTREAM_INVALID: "a compressed frame that does not start with its codec's header",
    CODESTREAM_MISMATCH: "a compressed frame whose header disagrees with the declared geometry",
    REPAIR_IMPOSSIBLE: "a repairable problem in a file the gate cannot edit (deflated)",
}

REPAIRABLE: Final = frozenset({CHARSET_RELABELLED})
"""Codes that alone give :attr:`Action.REPAIR`; any other code gives quarantine."""
