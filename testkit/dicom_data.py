"""Test DICOM data: transcoding, reading back, comparing pixels, retrieving with C-GET.

The images themselves come from :mod:`archive_tools.synthetic`, the generator the demo and the
benchmark use too (with its test options: small sizes, multi-series studies, 8/16 bits stored,
GB18030 text). Here is what only tests need: :func:`encode` turns an uncompressed file into any
transfer syntax the archive must accept (REQUIREMENTS M1) with DCMTK (dcmconv, dcmcjpeg,
dcmcjpls, dcmcrle) or GDCM (gdcmconv, for JPEG 2000), and checks that the tool really produced
that syntax; the comparisons say how close a decoded image came back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
)

from testkit import dcmtk

NEAR_LOSSLESS_DEVIATION = 2
"""NEAR parameter used for JPEG-LS near-lossless: every sample is within this of the source."""


# --- files --------------------------------------------------------------------------------------

def read(path_or_bytes: Path | bytes) -> Dataset:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return pydicom.dcmread(source)


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


# --- transcoding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Encoding:
    """How to make a file in one transfer syntax from an uncompressed one."""

    syntax: str
    name: str
    lossless: bool
    command: Callable[[Path, Path], tuple[str, list[str]]]


def _dcmtk(tool: str, *options: str) -> Callable[[Path, Path], tuple[str, list[str]]]:
    return lambda src, dst: (tool, [*options, str(src), str(dst)])


def _gdcm(*options: str) -> Callable[[Path, Path], tuple[str, list[str]]]:
    return lambda src, dst: ("gdcmconv", [*options, "-i", str(src), "-o", str(dst)])


# +un keeps the SOP Instance UID even for lossy encodings, so tests can find what they sent;
# +sr makes DCMTK's lossy JPEG keep stored values as they are (by default it rescales the
# min…max pixel range to the full sample range and rewrites Rescale Intercept or the window).
ENCODINGS: dict[str, Encoding] = {e.syntax: e for e in (
    Encoding(ImplicitVRLittleEndian, "Implicit VR Little Endian", True, _dcmtk("dcmconv", "+ti")),
    Encoding(ExplicitVRLittleEndian, "Explicit VR Little Endian", True, _dcmtk("dcmconv", "+te")),
    Encoding(ExplicitVRBigEndian, "Explicit VR Big Endian", True, _dcmtk("dcmconv", "+tb")),
    Encoding(JPEGBaseline8Bit, "JPEG Baseline (Process 1)", False,
             _dcmtk("dcmcjpeg", "+eb", "+q", "90", "+sr", "+un")),
    Encoding(JPEGExtended12Bit, "JPEG Extended (Process 2 & 4)", False,
             _dcmtk("dcmcjpeg", "+ee", "+q", "90", "+sr", "+un")),
    Encoding(JPEGLossless, "JPEG Lossless (Process 14)", True,
             _dcmtk("dcmcjpeg", "+el", "+sv", "6", "+un")),
    Encoding(JPEGLosslessSV1, "JPEG Lossless (Process 14, SV1)", True,
             _dcmtk("dcmcjpeg", "+e1", "+un")),
    Encoding(JPEGLSLossless, "JPEG-LS Lossless", True, _dcmtk("dcmcjpls", "+el", "+un")),
    Encoding(JPEGLSNearLossless, "JPEG-LS Near-Lossless", False,
             _dcmtk("dcmcjpls", "+en", "+md", str(NEAR_LOSSLESS_DEVIATION), "+un")),
    Encoding(JPEG2000Lossless, "JPEG 2000 Lossless", True, _gdcm("--j2k")),
    Encoding(JPEG2000, "JPEG 2000 (lossy)", False, _gdcm("--j2k", "--lossy", "-r", "8")),
    Encoding(RLELossless, "RLE Lossless", True, _dcmtk("dcmcrle", "+un")),
)}


class EncodingFailed(AssertionError):
    """The tool ran but did not produce the transfer syntax asked for."""


def encode(src: Path, dst: Path, syntax: str) -> Path:
    """Transcode the uncompressed file ``src`` to ``syntax`` into ``dst``, and check the result.

    Read the instance back from ``dst``: a lossy encoder may give it a new SOP Instance UID
    (gdcmconv does for JPEG 2000 lossy, as PS3.3 C.7.6.1.1.5 recommends).
    """
    encoding = ENCODINGS[syntax]
    tool, args = encoding.command(src, dst)
    dcmtk.run(tool, *args)
    produced = transfer_syntax(dst)
    if produced != syntax:
        raise EncodingFailed(f"{tool} {' '.join(args)} wrote {produced}, not {syntax}")
    return dst


# --- pixel comparisons --------------------------------------------------------------------------

def pixels(ds: Dataset) -> np.ndarray:
    """Decoded stored values (no rescale, no VOI), via pydicom and its pylibjpeg/pyjpegls plugins.

    Colour JPEG stored as YBR_FULL_422 comes back converted to RGB, like the RGB source.
    """
    array: np.ndarray = ds.pixel_array
    return array


def max_abs_error(a: np.ndarray, b: np.ndarray) -> int:
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} != {b.shape}")
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64))))


def psnr(a: np.ndarray, b: np.ndarray, bits_stored: int) -> float:
    """Peak signal-to-noise ratio in dB, peak = 2**bits_stored - 1 (inf when identical)."""
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} != {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0:
        return math.inf
    peak = float((1 << bits_stored) - 1)
    return 10 * math.log10(peak * peak / mse)


def frame_bytes(ds: Dataset, frame_index: int) -> bytes:
    """Native (uncompressed, little endian) bytes of one frame (0-based) of ``ds``'s PixelData."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    size = rows * columns * int(ds.SamplesPerPixel) * int(ds.BitsAllocated) // 8
    data: bytes = ds.PixelData
    return data[frame_index * size:(frame_index + 1) * size]


def sop_instance_uids(datasets: Sequence[Dataset]) -> set[str]:
    return {str(ds.SOPInstanceUID) for ds in datasets}


def unique_token() -> str:
    """A short token unique to this run, for patient IDs that other tests cannot collide with."""
    return generate_uid(prefix=None).split(".")[-1][-10:]


# --- retrieving with pynetdicom -----------------------------------------------------------------

@dataclass
class Retrieved:
    """What a C-GET brought back: the final status and the instances, with their file meta."""

    status: int | None = None
    instances: list[Dataset] = field(default_factory=list)

    def by_sop_instance_uid(self) -> dict[str, Dataset]:
        return {str(ds.SOPInstanceUID): ds for ds in self.instances}


def c_get(port: int, called_aet: str, query: Dataset, *, sop_classes: Iterable[str],
          transfer_syntaxes: Sequence[str],
          model: str = StudyRootQueryRetrieveInformationModelGet,
          calling_aet: str = "PYNETDICOM") -> Retrieved:
    """C-GET ``query`` from 127.0.0.1:``port``, accepting ``sop_classes`` in these syntaxes only.

    The storage sub-operations come back on the same association (PS3.4 C.4.3), so this side
    proposes each storage SOP class with the SCP role (SCP/SCU Role Selection, PS3.7 D.3.3.4) and
    only ``transfer_syntaxes``: what arrives is in a syntax this client asked for, or not at all.
    """
    from pynetdicom import AE, build_role, evt
    from pynetdicom.events import Event

    retrieved = Retrieved()

    def on_store(event: Event) -> int:
        ds = event.dataset
        if ds is None:
            return 0xC210  # Cannot understand (PS3.4 GG.4)
        ds.file_meta = event.file_meta
        retrieved.instances.append(ds)
        return 0x0000

    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(model)
    classes = sorted(set(sop_classes))
    for uid in classes:
        ae.add_requested_context(uid, list(transfer_syntaxes))
    roles: list[Any] = [build_role(uid, scp_role=True) for uid in classes]  # ext_neg items
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet, ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    if not assoc.is_established:
        raise AssertionError(f"association to {called_aet}@127.0.0.1:{port} not established")
    try:
        for status, _identifier in assoc.send_c_get(query, model):
            if status is not None and "Status" in status:
                retrieved.status = int(status.Status)
    finally:
        assoc.release()
    return retrieved
