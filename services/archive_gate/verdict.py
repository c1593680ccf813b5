"""What the gate decides about one instance: the action, the reasons, the repair, the identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    ACCEPT = "accept"
    """Store the bytes as received."""
    REPAIR = "repair"
    """Store :attr:`Verdict.repaired` instead; :attr:`Verdict.repairs` says what changed."""
    QUARANTINE = "quarantine"
    """Do not index; keep the bytes as received with :attr:`Verdict.reasons`."""


def tag_text(tag: int | None) -> str:
    """``(gggg,eeee)`` in upper-case hex, the way DICOM tools print tags; ``-`` for none."""
    return "-" if tag is None else f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(frozen=True)
class Reason:
    """One problem found: a stable code (see :mod:`archive_gate.codes`), the tag (None when the
    problem is not one element's, e.g. a body that is not DICOM) and a message for a sysadmin."""

    code: str
    tag: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.code} {tag_text(self.tag)}: {self.message}"


@dataclass(frozen=True)
class Repair:
    """One header edit made by the gate: the element, its value before and after."""

    tag: int
    before: str | None
    after: str
    why: str


@dataclass(frozen=True)
class Identity:
    """The identifying values read best-effort, even from a file the gate refuses (None when
    absent or unreadable). ``patient_name`` is decoded with the instance's character set."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    transfer_syntax: str | None = None


@dataclass(frozen=True)
class Verdict:
    action: Action
    reasons: tuple[Reason, ...] = ()
    identity: Identity = field(default_factory=Identity)
    repaired: bytes | None = None
    """For :attr:`Action.REPAIR`: the whole instance with the header edits made, every other byte
    as received; None otherwise."""
    repairs: tuple[Repair, ...] = ()

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(reason.code for reason in self.reasons)
