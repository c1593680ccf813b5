"""Synthetic DICOM studies that look like patients in a viewer: one generator for the demo, the
tests and the benchmark.

Nothing here is real patient data: names, identifiers, dates and pixels are invented, and the
equipment is declared as ``Manufacturer = "Synthetic"``. The objects follow the IODs of DICOM
PS3.3 closely enough that Orthanc, DICOMweb clients and OHIF treat them like modality output:
CT Image (A.3, :mod:`.ct`), MR Image (A.4, :mod:`.mr`), Ultrasound Multi-frame Image (A.7,
:mod:`.us`) and Digital X-Ray Image For Presentation (A.26, :mod:`.dx`), encoded in Explicit VR
Little Endian with UTF-8 text (ISO_IR 192) unless asked for another character set.

Pixels are drawn as soft-edged shapes in patient millimetres (:mod:`.canvas`: a
contrast-enhanced chest CT, a T2 brain MR, an apical four-chamber echo with colour Doppler, a PA
chest radiograph), so that they have the structure, value ranges and geometry of the real thing
while staying cheap to make. The modules every image shares are assembled in :mod:`.builder`.

What tests need are options of the same generators: small sizes, several series in one study
(pass one :class:`StudyInfo` to each), the study's own date, accession and description, other
series numbers and descriptions, 8 or 16 bits stored (``dx_image``, ``mr_series``), a grey-scale
cine (``us_cine(color=False)``) and other character sets (``charset="GB18030"``).
"""

from .builder import (
    DEFAULT_PATIENT,
    UTF8,
    InvalidInfo,
    InvalidPatient,
    InvalidStudy,
    PatientInfo,
    StudyInfo,
    new_instance,
    new_series,
    set_pixels,
    to_bytes,
    write_file,
    write_files,
)
from .ct import ct_volume
from .dx import dx_image
from .mr import mr_series
from .sets import DEMO_PATIENTS, SOP_CLASSES, demo_studies, instance_count
from .us import us_cine

__all__ = [
    "DEFAULT_PATIENT",
    "DEMO_PATIENTS",
    "SOP_CLASSES",
    "UTF8",
    "InvalidInfo",
    "InvalidPatient",
    "InvalidStudy",
    "PatientInfo",
    "StudyInfo",
    "ct_volume",
    "demo_studies",
    "dx_image",
    "instance_count",
    "mr_series",
    "new_instance",
    "new_series",
    "set_pixels",
    "to_bytes",
    "us_cine",
    "write_file",
    "write_files",
]
