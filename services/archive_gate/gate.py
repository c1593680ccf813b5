"""The gate's decision for one instance: read, check, repair, decide."""

from __future__ import annotations

from typing import Final

from . import attributes, charset, codes, pixels
from .reader import Parsed, read
from .repair import replace_text
from .verdict import Action, Identity, Reason, Repair, Verdict

MAX_REASONS_PER_CODE: Final = 10
"""A file with thousands of bad elements gets a readable list, not thousands of reasons."""


def inspect(data: bytes | bytearray | memoryview) -> Verdict:
    """Accept, repair or quarantine the DICOM instance in ``data`` (see the package docstring).

    Never raises on any input; the work is proportional to the header, not to pixel data.
    """
    parsed = read(data)
    reasons = list(parsed.problems)
    found = charset.CharsetCheck((), "latin_1")
    if parsed.syntax is not None:
        found = charset.check(parsed)
        reasons += found.reasons
        reasons += attributes.check(parsed, found.codec)
        reasons += pixels.check(parsed)
    reasons = _capped(reasons)
    identity = identify(parsed, found.codec)
    if not reasons:
        return Verdict(Action.ACCEPT, identity=identity)
    if any(reason.code not in codes.REPAIRABLE for reason in reasons):
        return Verdict(Action.QUARANTINE, tuple(reasons), identity)
    return _repair(parsed, tuple(reasons), identity, found)


def _repair(parsed: Parsed, reasons: tuple[Reason, ...], identity: Identity,
            found: charset.CharsetCheck) -> Verdict:
    repaired = replace_text(parsed, charset.SPECIFIC_CHARACTER_SET, "CS", charset.GB18030)
    if repaired is not None and inspect(repaired).action is not Action.ACCEPT:
        repaired = None  # a repair that does not make the file acceptable is not one
    if repaired is None:
        return Verdict(Action.QUARANTINE, reasons + (Reason(
            codes.REPAIR_IMPOSSIBLE, charset.SPECIFIC_CHARACTER_SET,
            "the character set could be relabelled, but the gate cannot edit this file "
            "(a deflated data set) or the edited file would still be refused"),), identity)
    repair = Repair(charset.SPECIFIC_CHARACTER_SET, found.relabel_from or None,
                    charset.GB18030, "the text is GB18030 (see archive_gate.charset)")
    return Verdict(Action.REPAIR, reasons, identity, repaired, (repair,))


def _capped(reasons: list[Reason]) -> list[Reason]:
    counts: dict[str, int] = {}
    kept = []
    for reason in reasons:
        counts[reason.code] = counts.get(reason.code, 0) + 1
        if counts[reason.code] <= MAX_REASONS_PER_CODE:
            kept.append(reason)
    return kept


def identify(parsed: Parsed, codec: str) -> Identity:
    """The identifying values, best effort: whatever the reader got to."""
    def uid(tag: int) -> str | None:
        return parsed.text(tag) or None

    def text(tag: int) -> str | None:
        element = parsed.get(tag)
        if element is None:
            return None
        return charset.decode(parsed.raw(element), codec).strip(" \0") or None

    return Identity(
        sop_class_uid=uid(0x00080016) or uid(0x00020002),
        sop_instance_uid=uid(0x00080018) or uid(0x00020003),
        study_instance_uid=uid(0x0020000D),
        series_instance_uid=uid(0x0020000E),
        patient_id=text(0x00100020),
        patient_name=text(0x00100010),
        transfer_syntax=parsed.transfer_syntax,
    )
