"""Header edits: the only change the gate makes to an instance (relabelling its character set).

The element is replaced (or inserted in tag order) and every other byte is kept as received;
a retired data set group length (0008,0000), if present, is corrected.
"""

from __future__ import annotations

import struct
from typing import Final

from .reader import Parsed
from .syntaxes import Syntax

GROUP_0008_LENGTH: Final = 0x00080000


def encode_element(tag: int, vr: str, value: bytes, syntax: Syntax) -> bytes:
    """One element with a short-length VR, in the data set's transfer syntax."""
    order = "<" if syntax.little else ">"
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if syntax.explicit:
        return head + vr.encode() + struct.pack(order + "H", len(value)) + value
    return head + struct.pack(order + "I", len(value)) + value


def replace_text(parsed: Parsed, tag: int, vr: str, text: str) -> bytes | None:
    """The whole instance with ``tag`` set to ``text`` (None when it cannot be edited here:
    a deflated data set, or one the reader could not place the element in)."""
    syntax = parsed.syntax
    if syntax is None or syntax.deflated:
        return None
    value = text.encode("ascii")
    if len(value) % 2:
        value += b" "
    new = encode_element(tag, vr, value, syntax)
    old = parsed.by_tag.get(tag)
    if old is not None:
        start, end = old.offset, old.end
    else:
        later = [el.offset for el in parsed.elements if el.tag > tag]
        if later:
            start = end = min(later)
        elif parsed.pixel is not None:
            start = end = parsed.pixel.element.offset
        else:
            start = end = len(parsed.buffer)
    buffer = parsed.buffer
    out = bytearray(buffer[:start])
    out += new
    out += buffer[end:]
    group = parsed.by_tag.get(GROUP_0008_LENGTH)
    if tag >> 16 == 0x0008 and group is not None and group.length == 4:
        order = "<" if syntax.little else ">"
        (declared,) = struct.unpack_from(order + "I", buffer, group.value_offset)
        delta = len(new) - (end - start)
        struct.pack_into(order + "I", out, group.value_offset, declared + delta)
    return bytes(out)
