"""Test DICOM data: small, realistic images built in memory, written, and transcoded.

Images are generated (never downloaded): a CT-like slice (12 bits stored, Hounsfield units
+1024), an MR-like slice using all 16 bits, an 8-bit radiograph and an 8-bit ultrasound cine,
each with anatomy-like structure and noise so that compression has real work to do. Patient
names are Chinese by default, in UTF-8 (``ISO_IR 192``, PS3.3 C.12.1.1.2) unless a test asks for
another character set.

:func:`encode` turns an uncompressed file into any transfer syntax the archive must accept
(REQUIREMENTS M1) with DCMTK (dcmconv, dcmcjpeg, dcmcjpls, dcmcrle) or GDCM (gdcmconv, for
JPEG 2000), and checks that the tool really produced that syntax.
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
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from testkit import dcmtk

# Transfer syntaxes (PS3.6 Table A-1, PS3.5 Section 10 and Annex A).
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

# Storage SOP classes (PS3.4 Annex B.5).
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
DX_IMAGE_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
US_MULTIFRAME_IMAGE = "1.2.840.10008.5.1.4.1.1.3.1"

UTF8 = "ISO_IR 192"
NEAR_LOSSLESS_DEVIATION = 2
"""NEAR parameter used for JPEG-LS near-lossless: every sample is within this of the source."""


# --- who and what the images are about ---------------------------------------------------------

@dataclass(frozen=True)
class Patient:
    id: str
    name: str = "张伟^"
    birth_date: str = "19650412"
    sex: str = "M"


@dataclass(frozen=True)
class Study:
    uid: str = field(default_factory=generate_uid)
    date: str = "20240315"
    time: str = "093000"
    accession: str = "ACC0001"
    study_id: str = "1"
    description: str = "胸部CT平扫"
    referring_physician: str = "李医生^"


# --- pixel content ------------------------------------------------------------------------------

def _grid(rows: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates in [-1, 1], y down the rows and x across the columns."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    return 2 * y / max(rows - 1, 1) - 1, 2 * x / max(columns - 1, 1) - 1


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float
             ) -> np.ndarray:
    result: np.ndarray = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
    return result


def ct_pixels(rows: int, columns: int, *, seed: int = 0, position: float = 0.0) -> np.ndarray:
    """A chest-CT-like slice: stored values = HU + 1024, 12 bits (0…4095), uint16.

    ``position`` in [0, 1] moves the anatomy a little, so the slices of a volume differ.
    """
    rng = np.random.default_rng(seed)
    y, x = _grid(rows, columns)
    hu = np.full((rows, columns), -1000.0)
    hu[_ellipse(y, x, 0.05, 0, 0.72, 0.9)] = -100.0                      # subcutaneous fat
    body = _ellipse(y, x, 0.05, 0, 0.64, 0.82)
    hu[body] = 40.0 + 15.0 * x[body]                                     # soft tissue
    lung_ry = 0.42 + 0.08 * position
    for side in (-1.0, 1.0):
        hu[_ellipse(y, x, -0.02, side * 0.42, lung_ry, 0.3)] = -860.0   # lungs
    for k in range(12):                                                  # vessels in the lungs
        angle = k * 2 * math.pi / 12 + position
        cy, cx = 0.25 * math.sin(angle), (0.42 if k % 2 else -0.42) + 0.12 * math.cos(angle)
        hu[_ellipse(y, x, cy, cx, 0.03, 0.03)] = 60.0
    hu[_ellipse(y, x, 0.48, 0, 0.13, 0.11)] = 750.0                      # vertebral body
    hu[_ellipse(y, x, 0.48, 0, 0.08, 0.065)] = 260.0                     # marrow
    hu[_ellipse(y, x, 0.28, 0.12, 0.07, 0.07)] = 180.0                   # aorta (contrast)
    hu[_ellipse(y, x, -0.05, -0.1, 0.22, 0.2)] = 45.0                    # heart
    hu[body] += rng.normal(0.0, 12.0, size=int(body.sum()))              # quantum noise
    hu[~body] += rng.normal(0.0, 4.0, size=int((~body).sum()))
    return np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16)


def mr_pixels(rows: int, columns: int, *, seed: int = 0, position: float = 0.0) -> np.ndarray:
    """A brain-MR-like slice using the full 16-bit range (bits stored 16), uint16."""
    rng = np.random.default_rng(seed)
    y, x = _grid(rows, columns)
    signal = np.zeros((rows, columns))
    head = _ellipse(y, x, 0, 0, 0.9, 0.75)
    signal[head] = 52000.0                                               # scalp / skull marrow
    signal[_ellipse(y, x, 0, 0, 0.82, 0.67)] = 4000.0                    # cortical bone
    brain = _ellipse(y, x, 0, 0, 0.77, 0.62)
    signal[brain] = 30000.0 + 6000.0 * np.cos(9 * x[brain] + 4 * y[brain] + position)  # gyri
    signal[_ellipse(y, x, -0.05, -0.12, 0.22, 0.07)] = 12000.0          # ventricles
    signal[_ellipse(y, x, -0.05, 0.12, 0.22, 0.07)] = 12000.0
    signal *= 1.0 + 0.15 * (x + 0.5 * y)                                 # coil bias field
    noise = np.hypot(rng.normal(0, 900, signal.shape), rng.normal(0, 900, signal.shape))
    return np.clip(np.rint(signal + noise), 0, 65535).astype(np.uint16)


def xray_pixels(rows: int, columns: int, *, seed: int = 0) -> np.ndarray:
    """A chest-radiograph-like 8-bit image (MONOCHROME2), uint8."""
    rng = np.random.default_rng(seed)
    y, x = _grid(rows, columns)
    value = 40.0 + 30.0 * (1 - x ** 2)                                   # soft tissue
    for side in (-1.0, 1.0):
        lung = _ellipse(y, x, -0.05, side * 0.4, 0.6, 0.28)
        value[lung] = 25.0 + 10.0 * y[lung]
    ribs = (np.sin(14 * y + 3 * x ** 2) > 0.6) & (np.abs(x) < 0.75)      # ribs
    value[ribs] += 60.0
    value[np.abs(x) < 0.08] = 200.0                                       # spine
    value += 35.0 * np.exp(-((y + 0.1) ** 2 + (x - 0.08) ** 2) / 0.05)    # heart
    value += rng.normal(0.0, 3.0, value.shape)
    return np.clip(np.rint(value), 0, 255).astype(np.uint8)


def cine_pixels(frames: int, rows: int, columns: int, *, seed: int = 0) -> np.ndarray:
    """An ultrasound-like 8-bit cine: speckle in a sector with a moving echo; (frames, r, c)."""
    rng = np.random.default_rng(seed)
    y, x = _grid(rows, columns)
    radius = np.hypot(y + 1.0, x)
    angle = np.arctan2(x, y + 1.0)
    sector = (radius < 1.9) & (np.abs(angle) < 0.75)
    out = np.zeros((frames, rows, columns), dtype=np.uint8)
    for f in range(frames):
        phase = 2 * math.pi * f / max(frames, 1)
        speckle = rng.rayleigh(45.0, (rows, columns))
        wall = 140.0 * np.exp(-((radius - 1.1 - 0.15 * math.sin(phase)) ** 2) / 0.004)
        frame = np.where(sector, speckle * (1.2 - radius / 2.5) + wall, 0.0)
        out[f] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return out


# --- datasets -----------------------------------------------------------------------------------

def image_dataset(pixels: np.ndarray, *, sop_class_uid: str, modality: str, patient: Patient,
                  study: Study, series_uid: str, series_number: int, instance_number: int,
                  bits_stored: int, series_description: str = "",
                  charset: str = UTF8) -> Dataset:
    """An uncompressed (Explicit VR Little Endian) single- or multi-frame grey-scale image.

    ``pixels`` is (rows, columns) or (frames, rows, columns); uint8 or uint16.
    """
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be uint8 or uint16, not {pixels.dtype}")
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    rows, columns = pixels.shape[-2:]
    bits_allocated = pixels.dtype.itemsize * 8
    if not 1 <= bits_stored <= bits_allocated:
        raise ValueError(f"bits_stored {bits_stored} does not fit {bits_allocated} bits")
    if int(pixels.max()) >= 1 << bits_stored:
        raise ValueError(f"pixel values exceed {bits_stored} bits stored")

    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)

    ds = Dataset()
    ds.file_meta = meta
    # A preamble makes every writer produce a Part 10 file: pydicom.dcmwrite (used by
    # dicomweb-client's STOW-RS) omits the preamble and "DICM" when a data set has none.
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = study.date
    ds.SeriesDate = study.date
    ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = study.time
    ds.ContentTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = "Regional Archive Tests"
    ds.InstitutionName = "县人民医院"
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyDescription = study.description
    ds.SeriesDescription = series_description
    ds.PatientName = patient.name
    ds.PatientID = patient.id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).astype(f"<u{pixels.dtype.itemsize}").tobytes()
    ds["PixelData"].VR = "OW" if bits_allocated == 16 else "OB"
    return ds


def ct_series(patient: Patient, study: Study, *, slices: int = 3, rows: int = 64,
              columns: int = 64, series_number: int = 1, seed: int = 0,
              description: str = "肺窗 5mm") -> list[Dataset]:
    """An axial CT series: 12 bits stored, rescale to HU, a shared frame of reference."""
    series_uid, frame_of_reference = generate_uid(), generate_uid()
    out = []
    for i in range(slices):
        pixels = ct_pixels(rows, columns, seed=seed * 1000 + i, position=i / max(slices, 1))
        ds = image_dataset(pixels, sop_class_uid=CT_IMAGE, modality="CT", patient=patient,
                           study=study, series_uid=series_uid, series_number=series_number,
                           instance_number=i + 1, bits_stored=12,
                           series_description=description)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.KVP = 120
        ds.SliceThickness = 5.0
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-22.4, -22.4, -5.0 * i]
        ds.SliceLocation = -5.0 * i
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        out.append(ds)
    return out


def mr_series(patient: Patient, study: Study, *, slices: int = 2, rows: int = 64,
              columns: int = 64, series_number: int = 2, seed: int = 0,
              description: str = "T2 横断位") -> list[Dataset]:
    """An MR series using all 16 bits stored."""
    series_uid, frame_of_reference = generate_uid(), generate_uid()
    out = []
    for i in range(slices):
        pixels = mr_pixels(rows, columns, seed=seed * 1000 + i, position=float(i))
        ds = image_dataset(pixels, sop_class_uid=MR_IMAGE, modality="MR", patient=patient,
                           study=study, series_uid=series_uid, series_number=series_number,
                           instance_number=i + 1, bits_stored=16,
                           series_description=description)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = 90
        ds.RepetitionTime = 4000
        ds.SliceThickness = 4.0
        ds.PixelSpacing = [0.9, 0.9]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-28.8, -28.8, 4.0 * i]
        ds.WindowCenter = 30000
        ds.WindowWidth = 60000
        out.append(ds)
    return out


def dx_image(patient: Patient, study: Study, *, rows: int = 64, columns: int = 64,
             series_number: int = 3, seed: int = 0, description: str = "胸部正位") -> Dataset:
    """A single 8-bit digital radiograph (for presentation)."""
    ds = image_dataset(xray_pixels(rows, columns, seed=seed), sop_class_uid=DX_IMAGE_PRESENTATION,
                       modality="DX", patient=patient, study=study, series_uid=generate_uid(),
                       series_number=series_number, instance_number=1, bits_stored=8,
                       series_description=description)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    return ds


def us_cine(patient: Patient, study: Study, *, frames: int = 6, rows: int = 48,
            columns: int = 64, series_number: int = 4, seed: int = 0,
            description: str = "心脏超声") -> Dataset:
    """An 8-bit ultrasound multi-frame image (a cine loop)."""
    ds = image_dataset(cine_pixels(frames, rows, columns, seed=seed),
                       sop_class_uid=US_MULTIFRAME_IMAGE, modality="US", patient=patient,
                       study=study, series_uid=generate_uid(), series_number=series_number,
                       instance_number=1, bits_stored=8, series_description=description)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.CineRate = 30
    return ds


# --- files --------------------------------------------------------------------------------------

def write_file(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (preamble and file meta, PS3.10 7.1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_files(datasets: Iterable[Dataset], folder: Path) -> list[Path]:
    return [write_file(ds, folder / f"{ds.SOPInstanceUID}.dcm") for ds in datasets]


def to_bytes(ds: Dataset) -> bytes:
    with io.BytesIO() as buffer:
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()


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
    Encoding(IMPLICIT_VR_LE, "Implicit VR Little Endian", True, _dcmtk("dcmconv", "+ti")),
    Encoding(EXPLICIT_VR_LE, "Explicit VR Little Endian", True, _dcmtk("dcmconv", "+te")),
    Encoding(EXPLICIT_VR_BE, "Explicit VR Big Endian", True, _dcmtk("dcmconv", "+tb")),
    Encoding(JPEG_BASELINE, "JPEG Baseline (Process 1)", False,
             _dcmtk("dcmcjpeg", "+eb", "+q", "90", "+sr", "+un")),
    Encoding(JPEG_EXTENDED, "JPEG Extended (Process 2 & 4)", False,
             _dcmtk("dcmcjpeg", "+ee", "+q", "90", "+sr", "+un")),
    Encoding(JPEG_LOSSLESS_P14, "JPEG Lossless (Process 14)", True,
             _dcmtk("dcmcjpeg", "+el", "+sv", "6", "+un")),
    Encoding(JPEG_LOSSLESS_SV1, "JPEG Lossless (Process 14, SV1)", True,
             _dcmtk("dcmcjpeg", "+e1", "+un")),
    Encoding(JPEG_LS_LOSSLESS, "JPEG-LS Lossless", True, _dcmtk("dcmcjpls", "+el", "+un")),
    Encoding(JPEG_LS_NEAR_LOSSLESS, "JPEG-LS Near-Lossless", False,
             _dcmtk("dcmcjpls", "+en", "+md", str(NEAR_LOSSLESS_DEVIATION), "+un")),
    Encoding(JPEG_2000_LOSSLESS, "JPEG 2000 Lossless", True, _gdcm("--j2k")),
    Encoding(JPEG_2000, "JPEG 2000 (lossy)", False, _gdcm("--j2k", "--lossy", "-r", "8")),
    Encoding(RLE_LOSSLESS, "RLE Lossless", True, _dcmtk("dcmcrle", "+un")),
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

# Query/Retrieve information models (PS3.4 C.6) and Verification (PS3.4 A.4).
VERIFICATION = "1.2.840.10008.1.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"


@dataclass
class Retrieved:
    """What a C-GET brought back: the final status and the instances, with their file meta."""

    status: int | None = None
    instances: list[Dataset] = field(default_factory=list)

    def by_sop_instance_uid(self) -> dict[str, Dataset]:
        return {str(ds.SOPInstanceUID): ds for ds in self.instances}


def c_get(port: int, called_aet: str, query: Dataset, *, sop_classes: Iterable[str],
          transfer_syntaxes: Sequence[str], model: str = STUDY_ROOT_GET,
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
