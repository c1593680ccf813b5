"""Synthetic DICOM studies that look like patients in a viewer, for tests and demos.

Nothing here is real patient data: names, identifiers, dates and pixels are invented, and the
equipment is declared as ``Manufacturer = "Synthetic"``. The objects follow the IODs of DICOM
PS3.3 closely enough that Orthanc, DICOMweb clients and OHIF treat them like modality output:
CT Image (A.3), MR Image (A.4), Ultrasound Multi-frame Image (A.7) and Digital X-Ray Image For
Presentation (A.26), encoded in Explicit VR Little Endian with UTF-8 text (ISO_IR 192).

Pixels are drawn as soft-edged shapes in patient millimetres (a contrast-enhanced chest CT, a T2
brain MR, an apical four-chamber echo with colour Doppler, a PA chest radiograph), so that they
have the structure, value ranges and geometry of the real thing while staying cheap to make:
every shape is evaluated only inside its bounding box, and CT slices are drawn on all cores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

__all__ = [
    "PatientInfo",
    "InvalidPatient",
    "ct_volume",
    "mr_series",
    "us_cine",
    "dx_image",
    "demo_studies",
    "write_files",
    "instance_count",
    "SOP_CLASSES",
]

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]

CHARSET: Final = "ISO_IR 192"  # UTF-8, PS3.3 C.12.1.1.2
MANUFACTURER: Final = "Synthetic"
MODEL: Final = "archive_tools.synthetic"


# --- patients and studies ------------------------------------------------------------------------


class InvalidPatient(ValueError):
    """A PatientInfo field that cannot be encoded as its DICOM VR (PS3.5 6.2)."""


@dataclass(frozen=True)
class PatientInfo:
    """The Patient module (PS3.3 C.7.1.1) of a synthetic patient.

    ``name`` is a DICOM PN: ``family^given``, optionally as component groups
    ``alphabetic=ideographic=phonetic`` (PS3.5 6.2.1.1), e.g. ``"张^伟"`` or ``"Li^Na=李^娜"``.
    """

    name: str
    patient_id: str
    birth_date: str  # DA, YYYYMMDD
    sex: str  # M, F or O

    def __post_init__(self) -> None:
        groups = self.name.split("=")
        if not self.name or len(groups) > 3:
            raise InvalidPatient(f"name {self.name!r}: want 1 to 3 '='-separated groups")
        for group in groups:
            if len(group) > 64 or group.count("^") > 4 or "\\" in group:
                raise InvalidPatient(f"name {self.name!r}: group {group!r} is not a valid PN")
        if not self.patient_id or len(self.patient_id) > 64 or "\\" in self.patient_id:
            raise InvalidPatient(f"patient_id {self.patient_id!r}: want 1 to 64 characters")
        try:
            dt.datetime.strptime(self.birth_date, "%Y%m%d")
        except ValueError:
            raise InvalidPatient(f"birth_date {self.birth_date!r}: want YYYYMMDD") from None
        if self.sex not in ("M", "F", "O"):
            raise InvalidPatient(f"sex {self.sex!r}: want M, F or O")


DEFAULT_PATIENT: Final = PatientInfo("张^伟", "SYN0001", "19620418", "M")

INSTITUTIONS: Final = ("示范市第一人民医院", "示范市中医院", "示范县人民医院", "示范市妇幼保健院")
REFERRING: Final = ("李^建国", "陈^静", "赵^敏", "周^强")


@dataclass(frozen=True)
class _Study:
    uid: str
    date: dt.date
    time: str
    accession: str
    description: str
    institution: str
    referring: str
    study_id: str


@dataclass(frozen=True)
class _Series:
    uid: str
    number: int
    modality: str
    description: str
    body_part: str
    time: str


def _study(study_uid: str | None, description: str, seed: int) -> _Study:
    """Study-level values: dates and names follow ``seed``; the accession follows the UID."""
    uid = study_uid or generate_uid()
    date = dt.date(2024, 3, 4) + dt.timedelta(days=(seed * 47) % 300)
    time = f"{8 + (seed * 3) % 9:02d}{(seed * 17) % 60:02d}{(seed * 29) % 60:02d}"
    digest = int(hashlib.sha256(uid.encode()).hexdigest(), 16)
    return _Study(
        uid=uid,
        date=date,
        time=time,
        accession=f"A{date:%y%m%d}{digest % 10**6:06d}",
        description=description,
        institution=INSTITUTIONS[seed % len(INSTITUTIONS)],
        referring=REFERRING[seed % len(REFERRING)],
        study_id=f"{digest % 10**5:05d}",
    )


def _later(time: str, seconds: int) -> str:
    """A TM ``seconds`` after ``time`` (same day: acquisitions here are short)."""
    start = dt.datetime.strptime(time, "%H%M%S")
    return (start + dt.timedelta(seconds=seconds)).strftime("%H%M%S")


def _age(birth: str, on: dt.date) -> str:
    """Patient's Age as an AS (PS3.5 6.2), e.g. ``061Y``."""
    born = dt.datetime.strptime(birth, "%Y%m%d").date()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return f"{max(years, 0):03d}Y"


def _ds(value: float) -> str:
    """A DS string of at most 16 characters (PS3.5 6.2)."""
    return format_number_as_ds(float(value))


def _new_instance(
    sop_class: UID,
    patient: PatientInfo,
    study: _Study,
    series: _Series,
    instance_number: int,
    content_time: str,
) -> Dataset:
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
    ds.SpecificCharacterSet = CHARSET
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    date = f"{study.date:%Y%m%d}"
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = content_time
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.ContentDate = date
    ds.StudyTime = study.time
    ds.SeriesTime = series.time
    ds.ContentTime = content_time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL
    ds.InstitutionName = study.institution
    ds.ReferringPhysicianName = study.referring
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


def _set_pixels(ds: Dataset, pixels: NDArray[np.generic], photometric: str,
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


# --- drawing --------------------------------------------------------------------------------------


def _smoothstep(lo: float, hi: float, t: float) -> float:
    u = min(max((t - lo) / (hi - lo), 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _bump(lo: float, hi: float, t: float) -> float:
    """0 outside (lo, hi), rising to 1 in the middle: how big an organ is at level ``t``."""
    if not lo < t < hi:
        return 0.0
    return math.sin(math.pi * (t - lo) / (hi - lo))


def _grow(lo: float, hi: float, t: float) -> float:
    """0 before ``lo``, growing like the section of a dome to 1 at ``hi``."""
    return math.sqrt(min(max((t - lo) / (hi - lo), 0.0), 1.0))


Box = tuple[slice, slice]
Ripple = tuple[float, int, float]  # amplitude (fraction of the radius), lobes, phase


class _Canvas:
    """A float image addressed in millimetres, onto which soft-edged shapes are painted.

    ``x`` and ``y`` are the ascending coordinates of the column and row centres. Each shape is
    computed only inside its bounding box, which is what keeps a full CT volume fast.
    """

    def __init__(self, x: F32, y: F32, fill: float) -> None:
        self.x = x
        self.y = y
        self.image: F32 = np.full((y.size, x.size), fill, np.float32)

    def box(self, x0: float, x1: float, y0: float, y1: float) -> Box | None:
        c0, c1 = np.searchsorted(self.x, [x0, x1])
        r0, r1 = np.searchsorted(self.y, [y0, y1])
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(int(r0), int(r1)), slice(int(c0), int(c1))

    def radius(self, cx: float, cy: float, a: float, b: float, *, angle: float = 0.0,
               ripples: Sequence[Ripple] = ()) -> tuple[Box, F32] | None:
        """Normalised elliptical radius (1 on the outline) inside the shape's bounding box."""
        if a <= 0.05 or b <= 0.05:
            return None
        reach = max(a, b) * (1 + sum(abs(r[0]) for r in ripples)) + 2.0
        box = self.box(cx - reach, cx + reach, cy - reach, cy + reach)
        if box is None:
            return None
        u = self.x[box[1]][None, :] - np.float32(cx)
        v = self.y[box[0]][:, None] - np.float32(cy)
        if angle:
            c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
            u, v = u * c + v * s, v * c - u * s
        r: F32 = np.sqrt((u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2)
        if ripples:
            theta = np.arctan2(v / np.float32(b), u / np.float32(a))
            outline = np.ones_like(r)
            for amplitude, lobes, phase in ripples:
                outline += np.float32(amplitude) * np.sin(lobes * theta + np.float32(phase))
            r /= outline
        return box, r

    def ellipse(self, value: float, cx: float, cy: float, a: float, b: float, *,
                angle: float = 0.0, edge: float = 0.7, ripples: Sequence[Ripple] = (),
                below: float | None = None) -> None:
        """Paint a filled ellipse of ``value``, blended over ``edge`` mm at its outline.

        With ``below``, only pixels currently darker than it are painted (vessels in lung).
        """
        hit = self.radius(cx, cy, a, b, angle=angle, ripples=ripples)
        if hit is None:
            return
        box, r = hit
        alpha = np.clip((1 - r) * np.float32(min(a, b) / edge) + np.float32(0.5), 0, 1)
        sub = self.image[box]
        if below is not None:
            alpha *= sub < below
        sub += alpha * (np.float32(value) - sub)

    def chord(self, weight: float, cx: float, cy: float, a: float, b: float, *,
              angle: float = 0.0) -> None:
        """Add the projected thickness of an ellipsoid (radiography is a sum along the ray)."""
        hit = self.radius(cx, cy, a, b, angle=angle)
        if hit is None:
            return
        box, r = hit
        self.image[box] += np.float32(weight) * np.sqrt(np.clip(1 - r * r, 0, None))

    def rect(self, value: float, x0: float, x1: float, y0: float, y1: float) -> None:
        box = self.box(x0, x1, y0, y1)
        if box is not None:
            self.image[box] = value


def _axis(count: int, spacing: float) -> F32:
    """Pixel-centre coordinates, centred on the isocentre."""
    return ((np.arange(count, dtype=np.float32) - (count - 1) / 2) * spacing).astype(np.float32)


def _stored(values: F32, top: int) -> NDArray[np.uint16]:
    """Round and clip to the stored range of an unsigned image of ``top`` at most."""
    out: NDArray[np.uint16] = np.clip(np.rint(values), 0, top).astype(np.uint16)
    return out


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# --- CT: contrast-enhanced chest, lung apices to kidneys ---------------------------------------

HU_AIR, HU_LUNG, HU_FAT, HU_MUSCLE = -1000.0, -860.0, -100.0, 45.0
HU_BLOOD, HU_MYOCARDIUM, HU_LIVER, HU_SPLEEN = 210.0, 110.0, 105.0, 115.0
HU_CORTICAL, HU_CANCELLOUS, HU_DISC, HU_CSF = 750.0, 230.0, 90.0, 15.0
CT_INTERCEPT: Final = -1024
CT_THICKNESSES: Final = (0.625, 1.0, 1.25, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0)
CT_COVERAGE_MM: Final = 280.0  # apex of the lungs to the kidneys
CT_FOV_MM: Final = 500.0


@dataclass(frozen=True)
class _Vessel:
    """A pulmonary vessel: a tube leaving the hilum, thinner the farther it goes."""

    side: int
    t0: float
    dx: float
    dy: float
    radius: float


def _vessels(rng: np.random.Generator, count: int = 80) -> list[_Vessel]:
    out = []
    for _ in range(count):
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(120, 260)
        out.append(_Vessel(side=int(rng.choice([-1, 1])), t0=float(rng.uniform(0.25, 0.55)),
                           dx=speed * math.cos(angle), dy=speed * math.sin(angle),
                           radius=float(rng.uniform(1.2, 3.2))))
    return out


@dataclass(frozen=True)
class _CtGrid:
    x: F32
    y: F32
    phi: F32  # angle around the body from the posterior midline, 0..pi, for the ribs
    vessels: list[_Vessel]


def _ct_slice(grid: _CtGrid, t: float, z: float, rng: np.random.Generator) -> NDArray[np.uint16]:
    """One axial slice at level ``t`` (0 = lung apex, 1 = kidneys), ``z`` mm, in stored values."""
    cv = _Canvas(grid.x, grid.y, HU_AIR)
    cy = 5.0
    a = 150 + 16 * math.sin(math.pi * t)
    b = 106 + 8 * math.sin(math.pi * t)

    # Couch under the patient.
    top = cy + 116
    cv.rect(180.0, -215, 215, top, top + 3)
    cv.rect(-350.0, -205, 205, top + 3, top + 14)
    cv.rect(180.0, -215, 215, top + 14, top + 17)

    # Body wall: subcutaneous fat, muscle, then the thoracic or abdominal cavity.
    cv.ellipse(HU_FAT, 0, cy, a, b)
    cv.ellipse(HU_MUSCLE, 0, cy, a - 10, b - 9)
    scapula = 40 * (1 - _smoothstep(0.3, 0.45, t))
    psi = 0.95  # where on the back the scapulae lie, from the lateral wall
    sa, sb = a - 17, b - 15
    tangent = math.atan2(sb * math.cos(psi), -sa * math.sin(psi))
    for side in (-1, 1):
        cv.ellipse(450, side * sa * math.cos(psi), cy + sb * math.sin(psi), scapula, 4.0,
                   angle=tangent if side > 0 else math.pi - tangent)
    abdominal = _smoothstep(0.55, 0.8, t)
    cv.ellipse(-60 + 90 * abdominal, 0, cy + 2, a - 30, b - 28)

    # Lungs, with vessels fanning out of the hila, the airway and the mediastinum.
    g = math.sqrt(_smoothstep(-0.05, 0.4, t)) * (1 - _smoothstep(0.7, 0.92, t))
    cv.ellipse(HU_LUNG, -66 - 8 * g, cy - 4, 22 + 42 * g, 30 + 58 * g,
               ripples=[(0.02, 3, 0.0)])
    cv.ellipse(HU_LUNG, 66 + 8 * g, cy - 2, 20 + 40 * g, 28 + 58 * g,
               ripples=[(0.02, 3, 1.0)])
    for vessel in grid.vessels:
        d = t - vessel.t0
        if abs(d) > 0.45:
            continue
        vx = vessel.side * 46 + vessel.dx * abs(d)
        vy = cy + vessel.dy * abs(d)
        r = 0.7 + vessel.radius * math.exp(-4 * abs(d))
        cv.ellipse(150, vx, vy, r, r, edge=0.6, below=-500)
    if t < 0.36:  # trachea
        cv.ellipse(HU_MUSCLE, 0, cy - 28, 11, 10)
        cv.ellipse(HU_AIR, 0, cy - 28, 8.5, 7.5)
    elif t < 0.46:  # main bronchi
        spread = 8 + 120 * (t - 0.36)
        for side in (-1, 1):
            cv.ellipse(HU_AIR, side * spread, cy - 22, 6, 5.5, below=-200)
    cv.ellipse(HU_MUSCLE, -4, cy + 22, 7, 6)  # oesophagus
    cv.ellipse(HU_AIR, -4, cy + 21, 2, 1.5)

    # Heart and great vessels, enhanced by the contrast bolus.
    h = _bump(0.36, 0.8, t)
    cv.ellipse(HU_FAT, 20, cy - 22, 76 * h, 59 * h, angle=0.5)
    cv.ellipse(HU_MYOCARDIUM, 20, cy - 22, 72 * h, 55 * h, angle=0.5)
    cv.ellipse(HU_BLOOD, 38, cy - 14, 30 * h, 22 * h, angle=0.5)  # left ventricle
    cv.ellipse(HU_BLOOD - 20, -2, cy - 40, 30 * h, 17 * h, angle=0.5)  # right ventricle
    la = _bump(0.32, 0.55, t)
    cv.ellipse(HU_BLOOD, 12, cy + 12, 34 * la, 16 * la)  # left atrium
    ascending = 15 * _bump(0.16, 0.52, t) ** 0.3
    cv.ellipse(HU_BLOOD, 12, cy - 36, ascending, ascending)
    arch = _bump(0.15, 0.25, t)
    cv.ellipse(HU_BLOOD, 18, cy + 2, 14 * arch, 42 * arch, angle=-0.25)
    if t > 0.17:
        cv.ellipse(HU_BLOOD, 20 - 14 * _smoothstep(0.5, 1.0, t), cy + 24, 12, 12)
    pt = 13 * _bump(0.27, 0.42, t) ** 0.3
    cv.ellipse(HU_BLOOD - 30, 26, cy - 48, pt, pt)  # pulmonary trunk
    svc = 10 * _bump(0.05, 0.45, t) ** 0.3
    cv.ellipse(HU_BLOOD - 60, -26, cy - 32, svc, svc)

    # Upper abdomen rising into the bases: liver dome on the right, spleen and stomach left.
    lv = _grow(0.5, 0.74, t)
    cv.ellipse(HU_LIVER, -48, cy + 2, 76 * lv, 74 * lv, ripples=[(0.03, 2, 0.0)])
    if t > 0.55:
        cv.ellipse(HU_BLOOD - 70, -24, cy + 22, 11, 10)  # inferior vena cava
    ld = _grow(0.56, 0.8, t)
    cv.ellipse(30, 60, cy, 64 * ld, 74 * ld)
    st = _grow(0.6, 0.8, t)
    cv.ellipse(25, 42, cy - 22, 42 * st, 34 * st)
    cv.ellipse(HU_AIR, 42, cy - 44, 22 * st, 9 * st)  # gas cap of the stomach, anterior
    sp = _bump(0.6, 1.2, t)
    cv.ellipse(HU_SPLEEN, 88, cy + 28, 24 * sp, 40 * sp, angle=-0.6)
    kd = _bump(0.78, 1.25, t)
    for side in (-1, 1):
        cv.ellipse(190, side * 56, cy + 50, 22 * kd, 32 * kd, angle=-side * 0.45)
        cv.ellipse(95, side * 53, cy + 50, 11 * kd, 18 * kd, angle=-side * 0.45)

    # Skeleton last, so that it lies over every soft tissue: ribs, sternum, clavicles, spine.
    body = cv.box(-a, a, cy - b, cy + b)
    if body is not None and t < 0.88:
        xs = grid.x[body[1]][None, :]
        ys = grid.y[body[0]][:, None] - np.float32(cy)
        ring_b = b - 23
        rn = np.sqrt((xs / np.float32(a - 25)) ** 2 + (ys / np.float32(ring_b)) ** 2)
        radial = np.abs(rn - 1) * np.float32(ring_b)  # mm from the rib centre line
        phi = grid.phi[body]
        band = np.mod(np.float32(z) + np.float32(150 / math.pi) * phi, np.float32(26))
        along = np.minimum(band, np.float32(9) - band)  # ribs 9 mm high, every 26 mm
        span = np.clip((phi - 0.35) * 8, 0, 1) * np.clip((2.75 - phi) * 8, 0, 1)
        fade = np.float32(1 - _smoothstep(0.8, 0.88, t))
        sub = cv.image[body]
        rib = np.clip(np.float32(5.5) - radial, 0, 1) * np.clip(along + 0.5, 0, 1) * span * fade
        sub += rib * (np.float32(HU_CORTICAL) - sub)
        marrow = np.clip(np.float32(3.5) - radial, 0, 1) * np.clip(along - 1.5, 0, 1) * span * fade
        sub += marrow * (np.float32(HU_CANCELLOUS) - sub)
    sternum = _bump(0.08, 0.66, t) ** 0.3
    cv.ellipse(HU_CORTICAL, 0, cy - b + 18, 15 * sternum, 6.5 * sternum)
    cv.ellipse(HU_CANCELLOUS, 0, cy - b + 18, 12 * sternum, 4 * sternum)
    clav = 1 - _smoothstep(0.05, 0.12, t)
    for side in (-1, 1):
        cv.ellipse(HU_CORTICAL, side * 58, cy - b + 22, 36 * clav, 7 * clav, angle=side * 0.3)

    disc = (z % 30.0) < 6.0
    rv = 16 + 4 * t
    sy = cy + 50
    cv.ellipse(HU_CORTICAL, 0, sy + 30, 20, 9)  # laminae
    cv.ellipse(HU_CORTICAL, 0, sy + 42, 5, 11)  # spinous process
    if disc:
        cv.ellipse(HU_DISC, 0, sy, rv + 1, rv)
    else:
        cv.ellipse(HU_CORTICAL, 0, sy, rv + 1, rv)
        cv.ellipse(HU_CANCELLOUS, 0, sy, rv - 1.5, rv - 2.5)
        for side in (-1, 1):
            cv.ellipse(500, side * 24, sy + 20, 13, 4.5, angle=-side * 0.5)
    cv.ellipse(HU_CSF, 0, sy + 27, 9, 8)
    cv.ellipse(40, 0, sy + 27, 5, 4.5)  # cord

    hu = cv.image + rng.standard_normal(cv.image.shape, dtype=np.float32) * np.float32(12)
    return _stored(hu - CT_INTERCEPT, 4095)


def _ct_thickness(slices: int) -> float:
    """The standard reconstruction thickness that makes ``slices`` cover a chest best."""
    return min(CT_THICKNESSES, key=lambda th: abs(th * slices - CT_COVERAGE_MM))


def ct_volume(slices: int = 220, rows: int = 512, columns: int = 512, *,
              patient: PatientInfo | None = None, study_uid: str | None = None,
              seed: int = 0) -> list[Dataset]:
    """A contiguous axial CT series (CT Image Storage), cranial slice first.

    Slices step along -z by exactly SliceThickness (= SpacingBetweenSlices); stored values are
    uint16 with RescaleIntercept -1024, so air is about -1000 HU and cortical bone +750 HU.
    """
    if slices < 1 or rows < 16 or columns < 16:
        raise ValueError("ct_volume needs at least 1 slice of 16x16 pixels")
    patient = patient or DEFAULT_PATIENT
    study = _study(study_uid, "胸部CT增强扫描", seed)
    series = _Series(generate_uid(), 2, "CT", "胸部增强 纵隔窗", "CHEST", _later(study.time, 120))
    thickness = _ct_thickness(slices)
    spacing = CT_FOV_MM / columns
    x, y = _axis(columns, spacing), _axis(rows, spacing)
    rng = np.random.default_rng(seed)
    xx, yy = x[None, :] / np.float32(160), (y[:, None] - np.float32(5)) / np.float32(110)
    grid = _CtGrid(x, y, np.arctan2(np.abs(xx), yy).astype(np.float32), _vessels(rng))
    z0 = -40.0
    levels = [(i / max(slices - 1, 1), z0 - i * thickness) for i in range(slices)]
    seeds = np.random.SeedSequence(seed).spawn(slices)

    def draw(i: int) -> NDArray[np.uint16]:
        t, z = levels[i]
        return _ct_slice(grid, t, z, np.random.default_rng(seeds[i]))

    with ThreadPoolExecutor(_workers()) as pool:
        pixels = list(pool.map(draw, range(slices)))

    frame_of_reference = generate_uid()
    out = []
    for i, image in enumerate(pixels):
        t, z = levels[i]
        ds = _new_instance(CTImageStorage, patient, study, series, i + 1,
                           _later(series.time, 5 + i // 40))
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.AcquisitionNumber = 1
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [_ds(x[0]), _ds(y[0]), _ds(z)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
        ds.SliceThickness = _ds(thickness)
        ds.SpacingBetweenSlices = _ds(thickness)
        ds.SliceLocation = _ds(z)
        ds.KVP = "120"
        ds.XRayTubeCurrent = 250
        ds.ExposureTime = 500
        ds.ConvolutionKernel = "STANDARD"
        ds.ReconstructionDiameter = _ds(CT_FOV_MM)
        ds.DataCollectionDiameter = _ds(CT_FOV_MM)
        ds.GantryDetectorTilt = "0"
        ds.TableHeight = "160"
        ds.RotationDirection = "CW"
        ds.ContrastBolusAgent = "碘海醇 350"
        ds.ContrastBolusRoute = "IV"
        ds.RescaleIntercept = str(CT_INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = ["40", "-600"]
        ds.WindowWidth = ["400", "1500"]
        ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
        _set_pixels(ds, image, "MONOCHROME2", 12)
        out.append(ds)
    return out


# --- MR: T2 TSE brain, skull base to vertex ----------------------------------------------------

MR_AIR, MR_FAT, MR_BONE, MR_CSF = 0.0, 1100.0, 70.0, 1750.0
MR_GM, MR_WM, MR_DEEP, MR_MUSCLE = 980.0, 680.0, 840.0, 420.0


@dataclass(frozen=True)
class _Folds:
    """Gyri and folia: a few harmonics per outline, drifting with the level so that they look
    like folds followed through the slices rather than a flower."""

    cortex: list[Ripple]
    white: list[Ripple]
    folia: list[Ripple]

    @staticmethod
    def draw(rng: np.random.Generator) -> _Folds:
        def ripples(amplitudes: Sequence[float], lobes: Sequence[int]) -> list[Ripple]:
            return [(a, k, float(rng.uniform(0, 2 * math.pi))) for a, k in zip(amplitudes, lobes)]

        return _Folds(cortex=ripples((0.015, 0.012, 0.01), (9, 17, 29)),
                      white=ripples((0.05, 0.04, 0.03), (7, 13, 23)),
                      folia=ripples((0.02, 0.015), (31, 47)))

    def at(self, ripples: Sequence[Ripple], t: float) -> list[Ripple]:
        return [(a, k, p + 5 * t * (1 + i)) for i, (a, k, p) in enumerate(ripples)]


def _mr_slice(x: F32, y: F32, t: float, folds: _Folds,
              rng: np.random.Generator) -> NDArray[np.uint16]:
    """One axial T2 slice of a head at level ``t`` (0 = skull base, 1 = vertex)."""
    cv = _Canvas(x, y, MR_AIR)
    prof = math.sqrt(max(1 - ((t - 0.25) / 0.85) ** 2, 0.05))
    a, b, cy = 72 * prof, 92 * prof, 4.0
    cv.ellipse(MR_FAT, 0, cy, a, b)  # scalp
    cv.ellipse(MR_MUSCLE, 0, cy, a - 3, b - 3)
    cv.ellipse(MR_BONE, 0, cy, a - 5, b - 5)  # skull
    cv.ellipse(MR_CSF, 0, cy, a - 10, b - 10)  # subarachnoid space
    brain_a, brain_b = a - 11.5, b - 11.5
    cv.ellipse(MR_GM, 0, cy, brain_a, brain_b, ripples=folds.at(folds.cortex, t))
    cv.ellipse(MR_WM, 0, cy + 3, brain_a * 0.76, brain_b * 0.8, ripples=folds.at(folds.white, t))
    if t > 0.33:  # interhemispheric fissure
        cv.ellipse(MR_CSF, 0, cy, 1.2, brain_b, edge=0.5)

    deep = _bump(0.33, 0.6, t)
    for side in (-1, 1):
        cv.ellipse(MR_DEEP, side * 12, cy + 8, 10 * deep, 14 * deep)  # thalami
        cv.ellipse(MR_DEEP, side * 22, cy - 12, 7 * deep, 16 * deep, angle=side * 0.2)
    vent = _bump(0.4, 0.74, t)
    for side in (-1, 1):
        cv.ellipse(MR_CSF, side * 9, cy - 2, 5 * vent, 26 * vent, angle=side * 0.12)
    third = _bump(0.3, 0.46, t)
    cv.ellipse(MR_CSF, 0, cy + 6, 2.5 * third, 12 * third)

    base = _bump(-0.3, 0.34, t)  # posterior fossa and face
    for side in (-1, 1):
        cv.ellipse(MR_GM, side * 44, cy - 12, 20 * base, 34 * base)  # temporal lobes
        cv.ellipse(MR_WM, side * 44, cy - 10, 11 * base, 22 * base)
    cv.ellipse(MR_CSF, 0, cy + 44, 53 * base, 34 * base)
    cv.ellipse(MR_GM - 120, 0, cy + 46, 50 * base, 31 * base, ripples=folds.at(folds.folia, t))
    cv.ellipse(MR_WM, 0, cy + 44, 20 * base, 12 * base)
    cv.ellipse(MR_CSF, 0, cy + 24, 4 * base, 5 * base)  # fourth ventricle
    cv.ellipse(MR_WM + 40, 0, cy + 8, 14 * base, 13 * base)  # brainstem
    eye = _bump(-0.05, 0.26, t)
    for side in (-1, 1):
        cv.ellipse(MR_FAT, side * 30, cy - 62, 16 * eye, 16 * eye)  # orbital fat
        cv.ellipse(MR_CSF, side * 30, cy - 66, 12 * eye, 12 * eye)  # vitreous
        cv.ellipse(300, side * 30, cy - 77, 4 * eye, 2 * eye)  # lens
    sinus = _bump(-0.1, 0.22, t)
    cv.ellipse(MR_AIR, 0, cy - 62, 11 * sinus, 20 * sinus)

    real = cv.image + rng.standard_normal(cv.image.shape, dtype=np.float32) * np.float32(18)
    imag = rng.standard_normal(cv.image.shape, dtype=np.float32) * np.float32(18)
    magnitude = np.sqrt(real * real + imag * imag)  # Rician, as magnitude images are
    return _stored(magnitude, 4095)


def mr_series(slices: int = 24, rows: int = 256, columns: int = 256, *,
              patient: PatientInfo | None = None, study_uid: str | None = None,
              seed: int = 0) -> list[Dataset]:
    """An axial T2 TSE brain series (MR Image Storage): 5 mm slices with a 1 mm gap, caudal first."""
    if slices < 1 or rows < 16 or columns < 16:
        raise ValueError("mr_series needs at least 1 slice of 16x16 pixels")
    patient = patient or DEFAULT_PATIENT
    study = _study(study_uid, "头颅MR平扫", seed)
    series = _Series(generate_uid(), 3, "MR", "T2 TSE 横断位", "HEAD", _later(study.time, 300))
    thickness, gap = 5.0, 1.0
    step = (150.0 if slices > 1 else 0.0) / max(slices - 1, 1)
    step = max(step, thickness + gap) if slices > 1 else 0.0
    spacing = 230.0 / columns
    x, y = _axis(columns, spacing), _axis(rows, spacing)
    seeds = np.random.SeedSequence(seed).spawn(slices + 1)
    folds = _Folds.draw(np.random.default_rng(seeds[-1]))
    frame_of_reference = generate_uid()
    z0 = -45.0
    out = []
    for i in range(slices):
        t = i / max(slices - 1, 1)
        z = z0 + i * step
        image = _mr_slice(x, y, t, folds, np.random.default_rng(seeds[i]))
        ds = _new_instance(MRImageStorage, patient, study, series, i + 1,
                           _later(series.time, 10 + i * 4))
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.AcquisitionNumber = 1
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = ["SK", "SP"]
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = "*tse2d1_16"
        ds.RepetitionTime = "4000"
        ds.EchoTime = "100"
        ds.EchoTrainLength = 16
        ds.FlipAngle = "150"
        ds.MagneticFieldStrength = "3"
        ds.ImagingFrequency = "127.74"
        ds.ImagedNucleus = "1H"
        ds.ImagePositionPatient = [_ds(x[0]), _ds(y[0]), _ds(z)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
        ds.SliceThickness = _ds(thickness)
        ds.SpacingBetweenSlices = _ds(step or thickness)
        ds.SliceLocation = _ds(z)
        ds.WindowCenter = "800"
        ds.WindowWidth = "1600"
        _set_pixels(ds, image, "MONOCHROME2", 12)
        out.append(ds)
    return out


# --- US: apical four-chamber echocardiogram, cine with colour Doppler --------------------------

US_FRAME_TIME_MS: Final = 33.3333
US_HEART_RATE: Final = 72
US_CM_PER_PIXEL: Final = 0.03


def _speckle(rng: np.random.Generator, rows: int, columns: int) -> F32:
    """Fully developed speckle: the magnitude of a smoothed complex Gaussian field (Rayleigh),
    its grains wider than tall as the lateral resolution of a phased array is the poorer."""
    field = rng.standard_normal((rows // 2 + 2, columns // 3 + 3, 2), dtype=np.float32)
    field = np.repeat(np.repeat(field, 2, axis=0), 3, axis=1)[:rows + 2, :columns + 2]
    smooth = sum(field[i:i + rows, j:j + columns] for i in range(3) for j in range(3))
    assert isinstance(smooth, np.ndarray)
    grains: F32 = (np.hypot(smooth[..., 0], smooth[..., 1]) / np.float32(3.76 * 3)).astype(
        np.float32)
    return grains


def _us_frames(frames: int, rows: int, columns: int, seed: int, color: bool) -> NDArray[np.uint8]:
    """Frames of a beating heart seen from the apex: sector, speckle, chambers, Doppler box."""
    rng = np.random.default_rng(seed)
    sx, sy = columns / 640, rows / 480
    x = np.arange(columns, dtype=np.float32)
    y = np.arange(rows, dtype=np.float32)
    apex_x, apex_y = columns / 2, 22 * sy
    dx = x[None, :] - np.float32(apex_x)
    dy = y[:, None] - np.float32(apex_y)
    r = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dx, dy)
    depth = rows - 30 * sy
    sector = (np.clip((np.float32(0.75) - np.abs(theta)) * 200, 0, 1)
              * np.clip((np.float32(depth) - r) * 0.5, 0, 1) * (dy > 0))
    gain = (np.exp(-r / np.float32(depth) * 0.6) * (1 + 0.7 * r / np.float32(depth))).astype(
        np.float32)
    speckle = _speckle(rng, rows + 8, columns)
    beat_s = 60.0 / US_HEART_RATE
    cx = apex_x

    out = np.zeros((frames, rows, columns, 3 if color else 1), np.uint8)
    for f in range(frames):
        phase = 2 * math.pi * (f * US_FRAME_TIME_MS / 1000.0) / beat_s
        systole = 0.5 * (1 - math.cos(phase))  # 0 end-diastole, 1 end-systole
        cv = _Canvas(x, y, 0.32)
        v, at = 1 - 0.2 * systole, 1 - 0.14 * (1 - systole)
        cv.ellipse(0.95, cx, 250 * sy, 200 * sx, 235 * sy, edge=3)  # pericardium
        cv.ellipse(0.4, cx, 252 * sy, 192 * sx, 227 * sy, edge=3)
        for side, ax, ay, a, b, ang in ((1, 55, 205, 40, 110, -0.15), (-1, -60, 215, 32, 92, 0.2)):
            cv.ellipse(0.62, cx + ax * sx, ay * sy, (a + 13) * sx * v, (b + 12) * sy * v,
                       angle=ang, edge=2)  # myocardium
            cv.ellipse(0.06, cx + ax * sx, (ay + 6) * sy, a * sx * v, b * sy * v, angle=ang,
                       edge=2)
            cv.ellipse(0.06, cx + side * 55 * sx, 372 * sy, 44 * sx * at, 44 * sy * at, edge=2)
        open_ = 1 - systole
        for lx in (32, 80):  # mitral leaflets, swinging open in diastole
            cv.ellipse(0.9, cx + lx * sx, 305 * sy, 3 * sx, 20 * sy,
                       angle=(0.9 * open_) * (1 if lx < 50 else -1), edge=1.5)
        shift = int(round(4 * systole))
        tissue = cv.image * speckle[shift:shift + rows, :columns] * gain * sector
        grey = np.clip(tissue, 0, 1) ** np.float32(0.6) * np.float32(235)
        grey += rng.standard_normal(grey.shape, dtype=np.float32) * np.float32(3) * sector
        grey = np.clip(grey, 0, 255)
        if not color:
            out[f, :, :, 0] = grey.astype(np.uint8)
            continue
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
        # Colour Doppler over the mitral inflow: red (towards the probe) in diastole,
        # blue (away, into the outflow tract) in systole. PS3.3 C.8.5.6.1.2 "0011": 2D + colour.
        box = cv.box(cx + 10 * sx, cx + 105 * sx, 220 * sy, 360 * sy)
        if box is not None:
            blood = (cv.image[box] < 0.1) * sector[box]
            velocity = math.sin(phase + math.pi) if systole < 0.5 else -0.8 * systole
            mottle = 0.65 + 0.35 * speckle[box] / np.float32(1.2)
            strength = np.clip(abs(velocity) * mottle, 0, 1) * blood
            channel = 0 if velocity > 0 else 2
            sub = rgb[box]
            sub[..., channel] = np.maximum(sub[..., channel], strength * 255)
            sub[..., 1] = np.maximum(sub[..., 1], strength * 90 * (strength > 0.8))
            edge_rows, edge_cols = box
            rgb[edge_rows.start, edge_cols] = rgb[edge_rows.stop - 1, edge_cols] = 160
            rgb[edge_rows, edge_cols.start] = rgb[edge_rows, edge_cols.stop - 1] = 160
        out[f] = rgb.astype(np.uint8)
    return out


def us_cine(frames: int = 40, rows: int = 480, columns: int = 640, *,
            patient: PatientInfo | None = None, study_uid: str | None = None, seed: int = 0,
            color: bool = True) -> Dataset:
    """One multi-frame echo loop (Ultrasound Multi-frame Image Storage), 30 frames/s.

    RGB with a colour Doppler box by default, MONOCHROME2 B-mode with ``color=False``. The Cine
    module (PS3.3 C.7.6.5) gives FrameTime and CineRate; FrameIncrementPointer names FrameTime.
    """
    if frames < 1 or rows < 32 or columns < 32:
        raise ValueError("us_cine needs at least 1 frame of 32x32 pixels")
    patient = patient or DEFAULT_PATIENT
    study = _study(study_uid, "经胸超声心动图", seed)
    series = _Series(generate_uid(), 1, "US", "心尖四腔心 彩色多普勒" if color else "心尖四腔心",
                     "HEART", _later(study.time, 60))
    pixels = _us_frames(frames, rows, columns, seed, color)
    ds = _new_instance(UltrasoundMultiFrameImageStorage, patient, study, series, 1,
                       _later(series.time, 30))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "CARDIAC", "0011" if color else "0001"]
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.FrameTime = _ds(US_FRAME_TIME_MS)
    ds.CineRate = round(1000 / US_FRAME_TIME_MS)
    ds.RecommendedDisplayFrameRate = round(1000 / US_FRAME_TIME_MS)
    ds.FrameIncrementPointer = Tag(0x0018, 0x1063)  # Frame Time
    ds.HeartRate = US_HEART_RATE
    ds.TransducerData = ["S5-1"]
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 2 if color else 1  # colour flow / tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = columns - 1
    region.RegionLocationMaxY1 = rows - 1
    region.ReferencePixelX0 = columns // 2
    region.ReferencePixelY0 = 0
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = US_CM_PER_PIXEL * 480 / rows
    region.PhysicalDeltaY = US_CM_PER_PIXEL * 480 / rows
    ds.SequenceOfUltrasoundRegions = DicomSequence([region])
    if color:
        _set_pixels(ds, pixels, "RGB", 8, frames=frames)
    else:
        _set_pixels(ds, pixels[..., 0], "MONOCHROME2", 8, frames=frames)
    return ds


# --- DX: PA chest radiograph ----------------------------------------------------------------------

DX_PIXEL_MM: Final = 0.2
DX_FIELD_MM: Final = 420.0


def _dx_pixels(rows: int, columns: int, seed: int) -> NDArray[np.uint16]:
    """A PA chest: attenuation is summed along the ray, then log-compressed for presentation."""
    rng = np.random.default_rng(seed)
    pixel = DX_FIELD_MM / max(rows, columns)
    cv = _Canvas(_axis(columns, pixel), _axis(rows, pixel), 0.0)
    cv.chord(1.15, 0, 80, 168, 270)  # torso
    cv.chord(0.7, 0, -230, 58, 90)  # neck
    for side in (-1, 1):
        cv.chord(0.75, side * 190, -110, 48, 140)  # arms
        cv.chord(0.45, side * 178, -148, 24, 26)  # humeral heads
        cv.chord(0.22, side * 150, -60, 30, 95, angle=side * 0.25)  # scapulae
    lungs = ((-1, -78, -18, 76, 150), (1, 84, -10, 70, 155))
    for side, lx, ly, la, lb in lungs:
        cv.chord(-0.62, lx, ly, la, lb)
    # Diaphragm: below each dome the abdomen fills the lung back in.
    y = cv.y[:, None]
    x = cv.x[None, :]
    for side, lx, ly, la, lb in lungs:
        box = cv.box(lx - la, lx + la, ly - lb, ly + lb)
        if box is None:
            continue
        dome = np.float32(95 + 10 * (side > 0)) + np.float32(0.006) * (x[:, box[1]] - np.float32(lx)) ** 2
        below = np.clip((y[box[0]] - dome) / np.float32(6), 0, 1)
        u = (x[:, box[1]] - np.float32(lx)) / np.float32(la)
        v = (y[box[0]] - np.float32(ly)) / np.float32(lb)
        cv.image[box] += np.float32(0.62) * np.sqrt(np.clip(1 - u * u - v * v, 0, None)) * below
    cv.chord(0.62, 34, 70, 84, 68, angle=-0.25)  # heart
    cv.chord(0.2, 14, -62, 24, 34)  # aortic knob
    cv.chord(0.2, -4, 0, 30, 150)  # mediastinum
    cv.chord(-0.18, 0, -130, 9, 95)  # trachea
    # Spine, with a vertebra every 26 mm, faint behind the mediastinum.
    spine = cv.box(-14, 14, -260, 215)
    if spine is not None:
        ys = cv.y[spine[0]][:, None]
        xs = cv.x[spine[1]][None, :] / np.float32(14)
        level = np.abs(np.mod(ys, np.float32(26)) - np.float32(13)) / np.float32(13)
        cv.image[spine] += (np.float32(0.22) * np.sqrt(np.clip(1 - xs * xs, 0, None))
                            * (0.6 + 0.4 * np.clip(level * 3, 0, 1)))
    for side in (-1, 1):  # clavicles
        cv.chord(0.4, side * 85, -150, 78, 8, angle=side * 0.12)
    # Posterior ribs: arcs leaving the spine and falling laterally.
    for i in range(9):
        y0 = -170 + i * 22.0 + i * i * 0.9  # interspaces widen downwards
        width = 5.0 + 0.25 * i
        for side in (-1, 1):
            box = cv.box(side * 14 - (side < 0) * 155, side * 14 + (side > 0) * 155, y0 - 12,
                         y0 + 90)
            if box is None:
                continue
            lateral = np.abs(cv.x[box[1]][None, :]) - np.float32(14)
            # Leaving the spine the rib first rises a little, then falls along the wall.
            centre = (np.float32(y0) - np.float32(0.12) * lateral
                      + np.float32(0.0045) * lateral ** 2)
            dist = np.abs(cv.y[box[0]][:, None] - centre) / np.float32(width)
            reach = np.clip((np.float32(150 - 2 * i) - lateral) / 25, 0, 1)
            cv.image[box] += np.float32(0.2) * np.sqrt(np.clip(1 - dist * dist, 0, None)) * reach
    attenuation = np.clip(cv.image, 0, None)
    value = np.float32(120) + np.float32(3700) * (1 - np.exp(-np.float32(1.4) * attenuation))
    value += rng.standard_normal(value.shape, dtype=np.float32) * np.float32(14)
    return _stored(value, 4095)


def dx_image(rows: int = 2048, columns: int = 2048, *, patient: PatientInfo | None = None,
             study_uid: str | None = None, seed: int = 0) -> Dataset:
    """A PA chest radiograph (Digital X-Ray Image Storage - For Presentation), 12 bits."""
    if rows < 16 or columns < 16:
        raise ValueError("dx_image needs at least 16x16 pixels")
    patient = patient or DEFAULT_PATIENT
    study = _study(study_uid, "胸部DR正位", seed)
    series = _Series(generate_uid(), 1, "DX", "胸部 后前位", "CHEST", _later(study.time, 60))
    pixels = _dx_pixels(rows, columns, seed)
    ds = _new_instance(DigitalXRayImageStorageForPresentation, patient, study, series, 1,
                       _later(series.time, 1))
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    spacing = DX_FIELD_MM / max(rows, columns)
    ds.ImagerPixelSpacing = [_ds(spacing), _ds(spacing)]
    ds.DetectorType = "SCINTILLATOR"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImageLaterality = "U"
    chest = Dataset()
    chest.CodeValue = "51185008"
    chest.CodingSchemeDesignator = "SCT"
    chest.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = DicomSequence([chest])
    ds.KVP = "125"
    ds.ExposureTime = 8
    ds.XRayTubeCurrent = 320
    ds.DistanceSourceToDetector = "1800"
    ds.AcquisitionNumber = 1
    ds.WindowCenter = "2200"
    ds.WindowWidth = "3800"
    _set_pixels(ds, pixels, "MONOCHROME2", 12)
    return ds


# --- sets and files ----------------------------------------------------------------------------

DEMO_PATIENTS: Final = (
    PatientInfo("张^伟", "SYN20240001", "19620418", "M"),
    PatientInfo("王^芳", "SYN20240002", "19780923", "F"),
    PatientInfo("Li^Na=李^娜", "SYN20240003", "19850107", "F"),
)


SOP_CLASSES: Final[dict[str, UID]] = {
    "CT": CTImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "MR": MRImageStorage,
    "US": UltrasoundMultiFrameImageStorage,
}


def demo_studies(modalities: Collection[str] | None = None) -> list[list[Dataset]]:
    """The demo set: a chest CT (220 slices) and a chest radiograph for one patient, a brain MR
    and an echo cine for two others; ``modalities`` keeps only some of them.

    Pixels are the same on every call; UIDs are new, so loading the set twice gives new studies.
    """
    zhang, wang, li = DEMO_PATIENTS
    makers: list[tuple[str, Callable[[], list[Dataset]]]] = [
        ("CT", lambda: ct_volume(patient=zhang, seed=1)),
        ("DX", lambda: [dx_image(patient=zhang, seed=2)]),
        ("MR", lambda: mr_series(patient=wang, seed=3)),
        ("US", lambda: [us_cine(patient=li, seed=4)]),
    ]
    unknown = set(modalities or ()) - {m for m, _ in makers}
    if unknown:
        raise ValueError(f"no demo study of modality {', '.join(sorted(unknown))}")
    return [make() for modality, make in makers if modalities is None or modality in modalities]


def write_files(datasets: Iterable[Dataset], folder: Path | str) -> list[Path]:
    """Write each dataset as a DICOM file (PS3.10) named after its SOP Instance UID."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = target / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    log.debug("wrote %d files to %s", len(paths), target)
    return paths


def instance_count(studies: Sequence[Sequence[Dataset]]) -> int:
    """How many instances a set of studies holds."""
    return sum(len(study) for study in studies)
