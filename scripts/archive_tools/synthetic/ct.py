"""CT Image (PS3.3 A.3): a contrast-enhanced chest, lung apices to kidneys.

Slices are drawn on all cores; each is an axial section whose anatomy follows its level, so a
volume scrolls like a real one.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from .builder import (
    DEFAULT_PATIENT,
    UTF8,
    PatientInfo,
    StudyInfo,
    decimal,
    later,
    new_instance,
    new_series,
    set_axial_plane,
    set_pixels,
    Stored,
    stored,
)
from .canvas import F32, Canvas, axis, bump, grow, smoothstep


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


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


def _ct_slice(grid: _CtGrid, t: float, z: float, rng: np.random.Generator) -> Stored:
    """One axial slice at level ``t`` (0 = lung apex, 1 = kidneys), ``z`` mm, in stored values."""
    cv = Canvas(grid.x, grid.y, HU_AIR)
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
    scapula = 40 * (1 - smoothstep(0.3, 0.45, t))
    psi = 0.95  # where on the back the scapulae lie, from the lateral wall
    sa, sb = a - 17, b - 15
    tangent = math.atan2(sb * math.cos(psi), -sa * math.sin(psi))
    for side in (-1, 1):
        cv.ellipse(450, side * sa * math.cos(psi), cy + sb * math.sin(psi), scapula, 4.0,
                   angle=tangent if side > 0 else math.pi - tangent)
    abdominal = smoothstep(0.55, 0.8, t)
    cv.ellipse(-60 + 90 * abdominal, 0, cy + 2, a - 30, b - 28)

    # Lungs, with vessels fanning out of the hila, the airway and the mediastinum.
    g = math.sqrt(smoothstep(-0.05, 0.4, t)) * (1 - smoothstep(0.7, 0.92, t))
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
    h = bump(0.36, 0.8, t)
    cv.ellipse(HU_FAT, 20, cy - 22, 76 * h, 59 * h, angle=0.5)
    cv.ellipse(HU_MYOCARDIUM, 20, cy - 22, 72 * h, 55 * h, angle=0.5)
    cv.ellipse(HU_BLOOD, 38, cy - 14, 30 * h, 22 * h, angle=0.5)  # left ventricle
    cv.ellipse(HU_BLOOD - 20, -2, cy - 40, 30 * h, 17 * h, angle=0.5)  # right ventricle
    la = bump(0.32, 0.55, t)
    cv.ellipse(HU_BLOOD, 12, cy + 12, 34 * la, 16 * la)  # left atrium
    ascending = 15 * bump(0.16, 0.52, t) ** 0.3
    cv.ellipse(HU_BLOOD, 12, cy - 36, ascending, ascending)
    arch = bump(0.15, 0.25, t)
    cv.ellipse(HU_BLOOD, 18, cy + 2, 14 * arch, 42 * arch, angle=-0.25)
    if t > 0.17:
        cv.ellipse(HU_BLOOD, 20 - 14 * smoothstep(0.5, 1.0, t), cy + 24, 12, 12)
    pt = 13 * bump(0.27, 0.42, t) ** 0.3
    cv.ellipse(HU_BLOOD - 30, 26, cy - 48, pt, pt)  # pulmonary trunk
    svc = 10 * bump(0.05, 0.45, t) ** 0.3
    cv.ellipse(HU_BLOOD - 60, -26, cy - 32, svc, svc)

    # Upper abdomen rising into the bases: liver dome on the right, spleen and stomach left.
    lv = grow(0.5, 0.74, t)
    cv.ellipse(HU_LIVER, -48, cy + 2, 76 * lv, 74 * lv, ripples=[(0.03, 2, 0.0)])
    if t > 0.55:
        cv.ellipse(HU_BLOOD - 70, -24, cy + 22, 11, 10)  # inferior vena cava
    ld = grow(0.56, 0.8, t)
    cv.ellipse(30, 60, cy, 64 * ld, 74 * ld)
    st = grow(0.6, 0.8, t)
    cv.ellipse(25, 42, cy - 22, 42 * st, 34 * st)
    cv.ellipse(HU_AIR, 42, cy - 44, 22 * st, 9 * st)  # gas cap of the stomach, anterior
    sp = bump(0.6, 1.2, t)
    cv.ellipse(HU_SPLEEN, 88, cy + 28, 24 * sp, 40 * sp, angle=-0.6)
    kd = bump(0.78, 1.25, t)
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
        fade = np.float32(1 - smoothstep(0.8, 0.88, t))
        sub = cv.image[body]
        rib = np.clip(np.float32(5.5) - radial, 0, 1) * np.clip(along + 0.5, 0, 1) * span * fade
        sub += rib * (np.float32(HU_CORTICAL) - sub)
        marrow = np.clip(np.float32(3.5) - radial, 0, 1) * np.clip(along - 1.5, 0, 1) * span * fade
        sub += marrow * (np.float32(HU_CANCELLOUS) - sub)
    sternum = bump(0.08, 0.66, t) ** 0.3
    cv.ellipse(HU_CORTICAL, 0, cy - b + 18, 15 * sternum, 6.5 * sternum)
    cv.ellipse(HU_CANCELLOUS, 0, cy - b + 18, 12 * sternum, 4 * sternum)
    clav = 1 - smoothstep(0.05, 0.12, t)
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
    return stored(hu - CT_INTERCEPT, 12)


def _ct_thickness(slices: int) -> float:
    """The standard reconstruction thickness that makes ``slices`` cover a chest best."""
    return min(CT_THICKNESSES, key=lambda th: abs(th * slices - CT_COVERAGE_MM))


def ct_volume(slices: int = 220, rows: int = 512, columns: int = 512, *,
              patient: PatientInfo | None = None, study: StudyInfo | None = None, seed: int = 0,
              series_number: int = 2, series_description: str = "胸部增强 纵隔窗",
              charset: str = UTF8) -> list[Dataset]:
    """A contiguous axial CT series (CT Image Storage), cranial slice first.

    Slices step along -z by exactly SliceThickness (= SpacingBetweenSlices); stored values are
    uint16, 12 bits stored, with RescaleIntercept -1024, so air is about -1000 HU and cortical
    bone +750 HU. Without ``study``, a new one (a chest CT) that follows ``seed``.
    """
    if slices < 1 or rows < 16 or columns < 16:
        raise ValueError("ct_volume needs at least 1 slice of 16x16 pixels")
    patient = patient or DEFAULT_PATIENT
    study = study or StudyInfo.synthetic("胸部CT增强扫描", seed)
    series = new_series(study, "CT", "CHEST", series_number, series_description, 120)
    thickness = _ct_thickness(slices)
    spacing = CT_FOV_MM / columns
    x, y = axis(columns, spacing), axis(rows, spacing)
    rng = np.random.default_rng(seed)
    xx, yy = x[None, :] / np.float32(160), (y[:, None] - np.float32(5)) / np.float32(110)
    grid = _CtGrid(x, y, np.arctan2(np.abs(xx), yy).astype(np.float32), _vessels(rng))
    z0 = -40.0
    levels = [(i / max(slices - 1, 1), z0 - i * thickness) for i in range(slices)]
    seeds = np.random.SeedSequence(seed).spawn(slices)

    def draw(i: int) -> Stored:
        t, z = levels[i]
        return _ct_slice(grid, t, z, np.random.default_rng(seeds[i]))

    with ThreadPoolExecutor(_workers()) as pool:
        pixels = list(pool.map(draw, range(slices)))

    frame_of_reference = generate_uid()
    out = []
    for i, image in enumerate(pixels):
        t, z = levels[i]
        ds = new_instance(CTImageStorage, patient, study, series, i + 1,
                          later(series.time, 5 + i // 40), charset=charset)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.AcquisitionNumber = 1
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        set_axial_plane(ds, float(x[0]), float(y[0]), z, spacing, thickness, thickness)
        ds.KVP = "120"
        ds.XRayTubeCurrent = 250
        ds.ExposureTime = 500
        ds.ConvolutionKernel = "STANDARD"
        ds.ReconstructionDiameter = decimal(CT_FOV_MM)
        ds.DataCollectionDiameter = decimal(CT_FOV_MM)
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
        set_pixels(ds, image, "MONOCHROME2", 12)
        out.append(ds)
    return out

