"""Whether two encodings hold the same instance: the duplicate rule of the ingest gate.

A modality that sends a study again, or a study that arrives once by STOW-RS and once by
C-STORE, gives the same instance in other bytes: Orthanc rewrites the file meta of what comes by
DIMSE, and a sender may encode lengths of sequences differently. Two instances with one SOP
Instance UID are the same when every top-level element outside the file meta has the same value
bytes, sequences included (compared as encoded), and Pixel Data is the same. When the transfer
syntaxes differ (a router transcoded it), pixel data and sequences (whose items are encoded in
the transfer syntax's VR form) cannot be compared without decoding them, and the other elements
decide.

Anything unreadable in either is "not the same": the newcomer is then held for a person.
"""

from __future__ import annotations

from .reader import PIXEL_DATA, UNDEFINED, Element, Parsed, read


def _value(parsed: Parsed, element: Element) -> bytes:
    end = element.end if element.length == UNDEFINED else element.value_offset + element.length
    return bytes(parsed.buffer[element.value_offset:end])


def _pixels(parsed: Parsed) -> bytes | None:
    pixel = parsed.pixel
    return None if pixel is None else _value(parsed, pixel.element)


def _values(parsed: Parsed, leave_out: frozenset[int]) -> dict[int, bytes]:
    return {e.tag: _value(parsed, e) for e in parsed.elements
            if e.tag != PIXEL_DATA and e.tag not in leave_out}


def _sequences(*parsed: Parsed) -> frozenset[int]:
    """Tags that are a sequence in either (under Implicit VR an unknown one reads as UN)."""
    return frozenset(e.tag for p in parsed for e in p.elements if e.vr == "SQ")


def same_instance(a: bytes | memoryview, b: bytes | memoryview) -> bool:
    first, second = read(a), read(b)
    if first.stopped or second.stopped:
        return False
    same_syntax = first.transfer_syntax == second.transfer_syntax
    leave_out = frozenset() if same_syntax else _sequences(first, second)
    if _values(first, leave_out) != _values(second, leave_out):
        return False
    return not same_syntax or _pixels(first) == _pixels(second)
