"""Ultrasound Multi-frame Image (PS3.3 A.7): an apical four-chamber echo, cine with colour Doppler.

Speckle is fully developed (Rayleigh), the heart beats at 72/min and the cine runs at 30 frames/s.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UltrasoundMultiFrameImageStorage

from .builder import (
    DEFAULT_PATIENT,
    UTF8,
    PatientInfo,
    StudyInfo,
    decimal,
    later,
    new_instance,
    new_series,
    set_pixels,
)
from .canvas import F32, Canvas

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
        cv = Canvas(x, y, 0.32)
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
            patient: PatientInfo | None = None, study: StudyInfo | None = None, seed: int = 0,
            series_number: int = 1, series_description: str | None = None, color: bool = True,
            charset: str = UTF8) -> Dataset:
    """One multi-frame echo loop (Ultrasound Multi-frame Image Storage), 30 frames/s.

    RGB with a colour Doppler box by default, 8-bit MONOCHROME2 B-mode with ``color=False``.
    The Cine module (PS3.3 C.7.6.5) gives FrameTime and CineRate; FrameIncrementPointer names
    FrameTime.
    """
    if frames < 1 or rows < 32 or columns < 32:
        raise ValueError("us_cine needs at least 1 frame of 32x32 pixels")
    patient = patient or DEFAULT_PATIENT
    study = study or StudyInfo.synthetic("经胸超声心动图", seed)
    if series_description is None:
        series_description = "心尖四腔心 彩色多普勒" if color else "心尖四腔心"
    series = new_series(study, "US", "HEART", series_number, series_description, 60)
    pixels = _us_frames(frames, rows, columns, seed, color)
    ds = new_instance(UltrasoundMultiFrameImageStorage, patient, study, series, 1,
                      later(series.time, 30), charset=charset)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "CARDIAC", "0011" if color else "0001"]
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.FrameTime = decimal(US_FRAME_TIME_MS)
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
        set_pixels(ds, pixels, "RGB", 8, frames=frames)
    else:
        set_pixels(ds, pixels[..., 0], "MONOCHROME2", 8, frames=frames)
    return ds

