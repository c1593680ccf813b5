"""MR Image (PS3.3 A.4): an axial T2 TSE brain series, skull base to vertex.

Magnitude images, so the noise is Rician; gyri and folia are outlines with a few harmonics that
drift with the level, so that they are followed through the slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid

from .builder import (
    DEFAULT_PATIENT,
    UTF8,
    PatientInfo,
    Stored,
    StudyInfo,
    check_bits,
    decimal,
    later,
    new_instance,
    new_series,
    set_axial_plane,
    set_pixels,
    stored,
)
from .canvas import F32, Canvas, Ripple, axis, bump

MR_AIR, MR_FAT, MR_BONE, MR_CSF = 0.0, 1100.0, 70.0, 1750.0
MR_GM, MR_WM, MR_DEEP, MR_MUSCLE = 980.0, 680.0, 840.0, 420.0
#: The signal drawn at the top of the stored range: CSF (the brightest on T2) and its noise fit.
MR_PEAK: Final = 2000.0


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


def _mr_slice(x: F32, y: F32, t: float, folds: _Folds, rng: np.random.Generator,
              gain: float, bits_stored: int) -> Stored:
    """One axial T2 slice of a head at level ``t`` (0 = skull base, 1 = vertex)."""
    cv = Canvas(x, y, MR_AIR)
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

    deep = bump(0.33, 0.6, t)
    for side in (-1, 1):
        cv.ellipse(MR_DEEP, side * 12, cy + 8, 10 * deep, 14 * deep)  # thalami
        cv.ellipse(MR_DEEP, side * 22, cy - 12, 7 * deep, 16 * deep, angle=side * 0.2)
    vent = bump(0.4, 0.74, t)
    for side in (-1, 1):
        cv.ellipse(MR_CSF, side * 9, cy - 2, 5 * vent, 26 * vent, angle=side * 0.12)
    third = bump(0.3, 0.46, t)
    cv.ellipse(MR_CSF, 0, cy + 6, 2.5 * third, 12 * third)

    base = bump(-0.3, 0.34, t)  # posterior fossa and face
    for side in (-1, 1):
        cv.ellipse(MR_GM, side * 44, cy - 12, 20 * base, 34 * base)  # temporal lobes
        cv.ellipse(MR_WM, side * 44, cy - 10, 11 * base, 22 * base)
    cv.ellipse(MR_CSF, 0, cy + 44, 53 * base, 34 * base)
    cv.ellipse(MR_GM - 120, 0, cy + 46, 50 * base, 31 * base, ripples=folds.at(folds.folia, t))
    cv.ellipse(MR_WM, 0, cy + 44, 20 * base, 12 * base)
    cv.ellipse(MR_CSF, 0, cy + 24, 4 * base, 5 * base)  # fourth ventricle
    cv.ellipse(MR_WM + 40, 0, cy + 8, 14 * base, 13 * base)  # brainstem
    eye = bump(-0.05, 0.26, t)
    for side in (-1, 1):
        cv.ellipse(MR_FAT, side * 30, cy - 62, 16 * eye, 16 * eye)  # orbital fat
        cv.ellipse(MR_CSF, side * 30, cy - 66, 12 * eye, 12 * eye)  # vitreous
        cv.ellipse(300, side * 30, cy - 77, 4 * eye, 2 * eye)  # lens
    sinus = bump(-0.1, 0.22, t)
    cv.ellipse(MR_AIR, 0, cy - 62, 11 * sinus, 20 * sinus)

    real = cv.image + rng.standard_normal(cv.image.shape, dtype=np.float32) * np.float32(18)
    imag = rng.standard_normal(cv.image.shape, dtype=np.float32) * np.float32(18)
    magnitude = np.sqrt(real * real + imag * imag)  # Rician, as magnitude images are
    return stored(magnitude * np.float32(gain), bits_stored)


def mr_series(slices: int = 24, rows: int = 256, columns: int = 256, *,
              patient: PatientInfo | None = None, study: StudyInfo | None = None, seed: int = 0,
              series_number: int = 3, series_description: str = "T2 TSE 横断位",
              bits_stored: int = 12, charset: str = UTF8) -> list[Dataset]:
    """An axial T2 TSE brain series (MR Image Storage): 5 mm slices with a 1 mm gap, caudal first.

    The signal fills ``bits_stored`` (8 to 16; 16 puts values above 32767, which catches codecs
    that treat 16-bit samples as signed). Without ``study``, a new one (a head MR).
    """
    if slices < 1 or rows < 16 or columns < 16:
        raise ValueError("mr_series needs at least 1 slice of 16x16 pixels")
    check_bits(bits_stored)
    patient = patient or DEFAULT_PATIENT
    study = study or StudyInfo.synthetic("头颅MR平扫", seed)
    series = new_series(study, "MR", "HEAD", series_number, series_description, 300)
    gain = ((1 << bits_stored) - 1) / MR_PEAK
    thickness, gap = 5.0, 1.0
    step = (150.0 if slices > 1 else 0.0) / max(slices - 1, 1)
    step = max(step, thickness + gap) if slices > 1 else 0.0
    spacing = 230.0 / columns
    x, y = axis(columns, spacing), axis(rows, spacing)
    seeds = np.random.SeedSequence(seed).spawn(slices + 1)
    folds = _Folds.draw(np.random.default_rng(seeds[-1]))
    frame_of_reference = generate_uid()
    z0 = -45.0
    out = []
    for i in range(slices):
        t = i / max(slices - 1, 1)
        z = z0 + i * step
        image = _mr_slice(x, y, t, folds, np.random.default_rng(seeds[i]), gain,
                          bits_stored)
        ds = new_instance(MRImageStorage, patient, study, series, i + 1,
                          later(series.time, 10 + i * 4), charset=charset)
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
        set_axial_plane(ds, float(x[0]), float(y[0]), z, spacing, thickness, step or thickness)
        ds.WindowCenter = decimal(800 * gain)
        ds.WindowWidth = decimal(1600 * gain)
        set_pixels(ds, image, "MONOCHROME2", bits_stored)
        out.append(ds)
    return out

