"""The transfer syntaxes the archive accepts (REQUIREMENTS M1), and how each is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Syntax:
    """How a data set is encoded: VR explicit or implicit, byte order, deflated; the codec of
    encapsulated pixel data (None for native)."""

    explicit: bool
    little: bool
    deflated: bool = False
    codec: str | None = None


IMPLICIT_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
DEFLATED_LE: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE: Final = "1.2.840.10008.1.2.2"

JPEG: Final = "jpeg"
JPEG_LS: Final = "jpeg-ls"
JPEG_2000: Final = "jpeg2000"
RLE: Final = "rle"

SYNTAXES: Final[dict[str, Syntax]] = {
    IMPLICIT_LE: Syntax(explicit=False, little=True),
    EXPLICIT_LE: Syntax(explicit=True, little=True),
    DEFLATED_LE: Syntax(explicit=True, little=True, deflated=True),
    EXPLICIT_BE: Syntax(explicit=True, little=False),
    "1.2.840.10008.1.2.4.50": Syntax(True, True, codec=JPEG),     # baseline (process 1)
    "1.2.840.10008.1.2.4.51": Syntax(True, True, codec=JPEG),     # extended (processes 2 & 4)
    "1.2.840.10008.1.2.4.57": Syntax(True, True, codec=JPEG),     # lossless (process 14)
    "1.2.840.10008.1.2.4.70": Syntax(True, True, codec=JPEG),     # lossless SV1
    "1.2.840.10008.1.2.4.80": Syntax(True, True, codec=JPEG_LS),  # lossless
    "1.2.840.10008.1.2.4.81": Syntax(True, True, codec=JPEG_LS),  # near-lossless
    "1.2.840.10008.1.2.4.90": Syntax(True, True, codec=JPEG_2000),  # lossless only
    "1.2.840.10008.1.2.4.91": Syntax(True, True, codec=JPEG_2000),  # lossy
    "1.2.840.10008.1.2.5": Syntax(True, True, codec=RLE),
}

IMPLICIT: Final = SYNTAXES[IMPLICIT_LE]
EXPLICIT: Final = SYNTAXES[EXPLICIT_LE]
