"""The demo set: which patients have which studies."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Final

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from .builder import PatientInfo
from .ct import ct_volume
from .dx import dx_image
from .mr import mr_series
from .us import us_cine

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


def instance_count(studies: Sequence[Sequence[Dataset]]) -> int:
    """How many instances a set of studies holds."""
    return sum(len(study) for study in studies)
