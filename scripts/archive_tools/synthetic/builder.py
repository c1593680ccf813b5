"""The modules every synthetic image shares, and writing them as files.

Patient (PS3.3 C.7.1.1), General Study (C.7.2.1), General Series (C.7.3.1), General Equipment
(C.7.5.1), General Image (C.7.6.1), SOP Common (C.12.1) and Image Pixel (C.7.6.3) are assembled
here once; the modality modules (:mod:`.ct`, :mod:`.mr`, :mod:`.us`, :mod:`.dx`) add their own
attributes and pixels. Text is UTF-8 (``ISO_IR 192``) unless a caller asks for another
character set, e.g. ``GB18030`` (PS3.3 C.12.1.1.2), which pydicom then encodes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

log = logging.getLogger(__name__)

UTF8: Final = "ISO_IR 192"  # PS3.3 C.12.1.1.2
MANUFACTURER: Final = "Synthetic"
MODEL: Final = "archive_tools.synthetic"

INSTITUTIONS: Final = ("示范市第一人民医院", "示范市中医院", "示范县人民医院", "示范市妇幼保健院")
REFERRING: Final = ("李^建国", "陈^静", "赵^敏", "周^强")


class InvalidInfo(ValueError):
    """A patient or study field that cannot be encoded as its DICOM VR (PS3.5 6.2)."""


class InvalidPatient(InvalidInfo):
    """A PatientInfo field that cannot be encoded."""


class InvalidStudy(InvalidInfo):
    """A StudyInfo field that cannot be encoded."""


def _check_date(value: str, what: str, error: type[InvalidInfo]) -> None:
    try:
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise error(f"{what} {value!r}: want YYYYMMDD") from None


@dataclass(frozen=True)
class PatientInfo:
    """The Patient module (PS3.3 C.7.1.1) of a synthetic patient.

    ``name`` is a DICOM PN: ``family^given``, optionally as component groups
    ``alphabetic=ideographic=phonetic`` (PS3.5 6.2.1.1), e.g. ``"张^伟"`` or ``"Li^Na=李^娜"``.
    """

    name: str
    patient_id: str
    birth_date: str = "19650412"  # DA, YYYYMMDD
    sex: str = "M"  # M, F or O

    def __post_init__(self) -> None:
        groups = self.name.split("=")
        if not self.name or len(groups) > 3:
            raise InvalidPatient(f"name {self.name!r}: want 1 to 3 '='-separated groups")
        for group in groups:
            if len(group) > 64 or group.count("^") > 4 or "\\" in group:
                raise InvalidPatient(f"name {self.name!r}: group {group!r} is not a valid PN")
        if not self.patient_id or len(self.patient_id) > 64 or "\\" in self.patient_id:
            raise InvalidPatient(f"patient_id {self.patient_id!r}: want 1 to 64 characters")
        _check_date(self.birth_date, "birth_date", InvalidPatient)
        if self.sex not in ("M", "F", "O"):
            raise InvalidPatient(f"sex {self.sex!r}: want M, F or O")


DEFAULT_PATIENT: Final = PatientInfo("张^伟", "SYN0001", "19620418", "M")


def _accession(uid: str) -> str:
    """An accession number (SH, 16 characters at most) that follows the study UID."""
    return f"A{int(hashlib.sha256(uid.encode()).hexdigest(), 16) % 10**9:09d}"


@dataclass(frozen=True)
class StudyInfo:
    """The General Study module (PS3.3 C.7.2.1) and where the study was made.

    Give the fields a test matches on; :meth:`synthetic` makes plausible ones from a seed.
    Several series built with the same StudyInfo form one multi-series study.
    """

    uid: str = field(default_factory=generate_uid)
    date: str = "20240315"  # DA
    time: str = "093000"  # TM, HHMMSS
    accession: str = ""  # empty: derived from the UID
    description: str = ""
    institution: str = INSTITUTIONS[0]
    referring_physician: str = REFERRING[0]
    study_id: str = "1"

    def __post_init__(self) -> None:
        _check_date(self.date, "date", InvalidStudy)
        try:
            dt.datetime.strptime(self.time, "%H%M%S")
        except ValueError:
            raise InvalidStudy(f"time {self.time!r}: want HHMMSS") from None
        if not self.accession:
            object.__setattr__(self, "accession", _accession(self.uid))
        if len(self.accession) > 16 or len(self.study_id) > 16:
            raise InvalidStudy(f"accession {self.accession!r} or study_id {self.study_id!r}: "
                               "want 16 characters at most (SH)")

    @classmethod
    def synthetic(cls, description: str, seed: int, uid: str | None = None) -> StudyInfo:
        """A study whose date, time, institution and referring physician follow ``seed``."""
        uid = uid or generate_uid()
        date = dt.date(2024, 3, 4) + dt.timedelta(days=(seed * 47) % 300)
        digest = int(hashlib.sha256(uid.encode()).hexdigest(), 16)
        return cls(uid=uid, date=f"{date:%Y%m%d}",
                   time=f"{8 + (seed * 3) % 9:02d}{(seed * 17) % 60:02d}{(seed * 29) % 60:02d}",
                   accession=f"A{date:%y%m%d}{digest % 10**6:06d}", description=description,
                   institution=INSTITUTIONS[seed % len(INSTITUTIONS)],
                   referring_physician=REFERRING[seed % len(REFERRING)],
                   study_id=f"{digest % 10**5:05d}")


@dataclass(frozen=True)
class SeriesInfo:
    """The General Series module (PS3.3 C.7.3.1) values of one series."""

    uid: str
    number: int
    modality: str
    description: str
    body_part: str
    time: str


def new_series(study: StudyInfo, modality: str, body_part: str, number: int, description: str,
               after_s: int) -> SeriesInfo:
    """A new series of ``study``, acquired ``after_s`` seconds after the study started."""
    return SeriesInfo(generate_uid(), number, modality, description, body_part,
                      later(study.time, after_s))


def later(time: str, seconds: int) -> str:
    """A TM ``seconds`` after ``time`` (same day: acquisitions here are short)."""
    start = dt.datetime.strptime(time, "%H%M%S")
    return (start + dt.timedelta(seconds=seconds)).strftime("%H%M%S")


def _age(birth: str, on: str) -> str:
    """Patient's Age as an AS (PS3.5 6.2), e.g. ``061Y``."""
    born = dt.datetime.strptime(birth, "%Y%m%d").date()
    day = dt.datetime.strptime(on, "%Y%m%d").date()
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return f"{max(years, 0):03d}Y"


def decimal(value: float) -> str:
    """A DS string of at most 16 characters (PS3.5 6.2)."""
    return format_number_as_ds(float(value))


def new_instance(sop_class: UID, patient: PatientInfo, study: StudyInfo, series: SeriesInfo,
                 instance_number: int, content_time: str, *, charset: str = UTF8) -> Dataset:
    """The modules every image here shares: SOP Common, Patient, General Study/Series/Image,
    General Equipment (PS3.3 C.12.1, C.7.1.1, C.7.2.1, C.7.3.1, C.7.5.1, C.7.6.1)."""
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "ARCHIVE_SYNTH"

    ds = Dataset()
    ds.file_meta = meta
    # A preamble makes every writer produce a Part 10 file: pydicom.dcmwrite (what
    # dicomweb-client's STOW-RS uses) leaves out the preamble and "DICM" when there is none.
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = study.date
    ds.InstanceCreationTime = content_time
    ds.StudyDate = study.date
    ds.SeriesDate = study.date
    ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = series.time
    ds.ContentTime = content_time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL
    ds.InstitutionName = study.institution
    ds.ReferringPhysicianName = study.referring_physician
    ds.StationName = f"{series.modality}01"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = _age(patient.birth_date, study.date)
    ds.BodyPartExamined = series.body_part
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = instance_number
    return ds


def set_axial_plane(ds: Dataset, x0: float, y0: float, z: float, spacing: float, thickness: float,
                    step: float) -> None:
    """Image Plane module (PS3.3 C.7.6.2) of an axial slice whose first pixel centre is at
    (``x0``, ``y0``, ``z``) mm, with square pixels and slices ``step`` mm apart."""
    ds.ImagePositionPatient = [decimal(x0), decimal(y0), decimal(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = [decimal(spacing), decimal(spacing)]
    ds.SliceThickness = decimal(thickness)
    ds.SpacingBetweenSlices = decimal(step)
    ds.SliceLocation = decimal(z)


Stored = NDArray[np.unsignedinteger[Any]]


def check_bits(bits_stored: int, lowest: int = 8, highest: int = 16) -> int:
    if not lowest <= bits_stored <= highest:
        raise ValueError(f"bits_stored {bits_stored}: want {lowest} to {highest}")
    return bits_stored


def stored(values: NDArray[np.floating[Any]], bits_stored: int) -> Stored:
    """Round and clip to the range of ``bits_stored`` unsigned bits, in 8 or 16 allocated."""
    dtype = np.uint8 if bits_stored <= 8 else np.uint16
    out: Stored = np.clip(np.rint(values), 0, (1 << bits_stored) - 1).astype(dtype)
    return out


def set_pixels(ds: Dataset, pixels: NDArray[np.generic], photometric: str,
               bits_stored: int, *, frames: int | None = None) -> None:
    """Image Pixel module (PS3.3 C.7.6.3) and Pixel Data for native (uncompressed) ``pixels``.

    ``pixels`` is (rows, columns[, samples]) or, with ``frames``, (frames, rows, columns[, 3]).
    """
    samples = 3 if photometric == "RGB" else 1
    shape = pixels.shape[1:] if frames is not None else pixels.shape
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    bits_allocated = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    data = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<")).tobytes()
    if len(data) % 2:
        data += b"\x00"  # PS3.5 8.1.1: even length
    ds.add_new(Tag(0x7FE0, 0x0010), "OB" if bits_allocated == 8 else "OW", data)


# --- files -----------------------------------------------------------------------------------


def write_file(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (preamble and file meta, PS3.10 7.1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_files(datasets: Iterable[Dataset], folder: Path | str) -> list[Path]:
    """Write each dataset as a DICOM file named after its SOP Instance UID."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = [write_file(ds, target / f"{ds.SOPInstanceUID}.dcm") for ds in datasets]
    log.debug("wrote %d files to %s", len(paths), target)
    return paths


def to_bytes(ds: Dataset) -> bytes:
    """``ds`` as the bytes of a DICOM Part 10 file."""
    with io.BytesIO() as buffer:
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()
