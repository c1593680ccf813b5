"""The ingest gate: decide, before Orthanc indexes an instance, whether to accept it, accept it
after a declared lossless repair, or quarantine it (issue 7, REQUIREMENTS M5).

Standard library only and cheap: it runs inside Orthanc's Python plugin on every instance. It
reads the header (file meta, top-level elements, the structure of sequences, the description of
Pixel Data and the header of each compressed frame) and never copies or decodes pixel data; the
exceptions are a deflated data set (inflated whole, at most 64 MiB) and a repair (one copy).

API::

    from archive_gate import inspect, Action

    verdict = inspect(data)            # bytes, bytearray or memoryview; never raises
    verdict.action                     # Action.ACCEPT / Action.REPAIR / Action.QUARANTINE
    verdict.reasons                    # tuple of Reason(code, tag, message); empty on ACCEPT
    verdict.repaired, verdict.repairs  # REPAIR only: the edited bytes, and Repair(tag, before,
                                       # after, why) for each edit
    verdict.identity                   # Identity: SOP Class/Instance, Study, Series UIDs,
                                       # PatientID, PatientName (decoded), transfer syntax;
                                       # best effort, also for refused input

Reason codes are the constants of :mod:`archive_gate.codes` (``from archive_gate import codes``;
stable, ``codes.DESCRIPTIONS`` says what each means); ``tag`` is the int ``0xGGGGEEEE`` or None
(``tag_text`` prints it). Only :data:`codes.REPAIRABLE` codes can give REPAIR; any other code
means QUARANTINE, with every reason found (up to 10 per code).

What is accepted: a Part 10 file, a Part 10 stream without the 128-byte preamble and ``DICM``,
or a bare data set starting at group 0008 (Explicit or Implicit VR Little Endian), in one of the
transfer syntaxes of :mod:`archive_gate.syntaxes` (uncompressed LE/BE, deflated, JPEG baseline,
extended, lossless, lossless SV1, JPEG-LS lossless and near-lossless, JPEG 2000 lossless and
lossy, RLE). What is checked: see :mod:`.attributes` (required UIDs, UID syntax, value lengths,
NULs, IS/DS numbers), :mod:`.charset` (character sets, the GB18030 relabel, the only repair),
:mod:`.pixels` (image pixel module, pixel data length, encapsulation, codestream headers). Under
Implicit VR only the attributes of :mod:`.dictionary` have known VRs; the others are skipped.
Elements inside sequences and after Pixel Data are not checked.
"""

from .gate import inspect
from .verdict import Action, Identity, Reason, Repair, Verdict, tag_text

__all__ = ["Action", "Identity", "Reason", "Repair", "Verdict", "inspect", "tag_text"]
