"""Digital X-Ray Image For Presentation (PS3.3 A.26): a PA chest radiograph.

Attenuation is summed along the ray through ellipsoids (torso, lungs, heart, ribs, spine), then
log-compressed as a detector's presentation image is.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import DigitalXRayImageStorageForPresentation

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
    set_pixels,
    stored,
)
from .canvas import Canvas, axis

DX_PIXEL_MM: Final = 0.2
DX_FIELD_MM: Final = 420.0


def _dx_pixels(rows: int, columns: int, seed: int, bits_stored: int) -> Stored:
    """A PA chest: attenuation is summed along the ray, then log-compressed for presentation."""
    rng = np.random.default_rng(seed)
    pixel = DX_FIELD_MM / max(rows, columns)
    cv = Canvas(axis(columns, pixel), axis(rows, pixel), 0.0)
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
    return stored(value * np.float32(((1 << bits_stored) - 1) / 4095), bits_stored)


def dx_image(rows: int = 2048, columns: int = 2048, *, patient: PatientInfo | None = None,
             study: StudyInfo | None = None, seed: int = 0, series_number: int = 1,
             series_description: str = "胸部 后前位", bits_stored: int = 12,
             charset: str = UTF8) -> Dataset:
    """A PA chest radiograph (Digital X-Ray Image Storage - For Presentation).

    12 bits stored by default; 8 gives one byte a pixel, as many CR/DX exports do. Without
    ``study``, a new one (a chest radiograph).
    """
    if rows < 16 or columns < 16:
        raise ValueError("dx_image needs at least 16x16 pixels")
    check_bits(bits_stored)
    patient = patient or DEFAULT_PATIENT
    study = study or StudyInfo.synthetic("胸部DR正位", seed)
    series = new_series(study, "DX", "CHEST", series_number, series_description, 60)
    pixels = _dx_pixels(rows, columns, seed, bits_stored)
    ds = new_instance(DigitalXRayImageStorageForPresentation, patient, study, series, 1,
                      later(series.time, 1), charset=charset)
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
    ds.ImagerPixelSpacing = [decimal(spacing), decimal(spacing)]
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
    scale = ((1 << bits_stored) - 1) / 4095
    ds.WindowCenter = decimal(2200 * scale)
    ds.WindowWidth = decimal(3800 * scale)
    set_pixels(ds, pixels, "MONOCHROME2", bits_stored)
    return ds

