"""What the gate knows of PS3.5 (value representations) and PS3.6 (a small data dictionary).

The dictionary holds only the attributes the gate checks or the quarantine shows: in Implicit VR
files an element that is not here is treated as UN (its value is skipped, not checked).
"""

from __future__ import annotations

from typing import Final

VRS: Final = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
    "US UT UV".split())
LONG_LENGTH_VRS: Final = frozenset("OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
"""Explicit VRs with two reserved bytes and a 32-bit length (PS3.5 7.1.2)."""

CHARSET_TEXT_VRS: Final = frozenset("SH LO ST LT UT UC PN".split())
"""VRs whose values use the Specific Character Set (PS3.5 6.1.2.3)."""
DEFAULT_TEXT_VRS: Final = frozenset("AE AS CS DA DS DT IS TM UI UR".split())
"""String VRs limited to the default repertoire (ASCII)."""
MULTI_VALUE_VRS: Final = frozenset("AE AS CS DA DS DT IS LO PN SH TM UC UI".split())
"""String VRs whose values may hold several values separated by a backslash."""

MAX_CHARS: Final[dict[str, int]] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
    "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64,
}
"""Maximum length of one value in characters (PS3.5 Table 6.2-1; PN: per component group)."""

# tag -> (VR, keyword)
_ENTRIES: Final[tuple[tuple[int, str, str], ...]] = (
    (0x00020000, "UL", "FileMetaInformationGroupLength"),
    (0x00020001, "OB", "FileMetaInformationVersion"),
    (0x00020002, "UI", "MediaStorageSOPClassUID"),
    (0x00020003, "UI", "MediaStorageSOPInstanceUID"),
    (0x00020010, "UI", "TransferSyntaxUID"),
    (0x00020012, "UI", "ImplementationClassUID"),
    (0x00020013, "SH", "ImplementationVersionName"),
    (0x00020016, "AE", "SourceApplicationEntityTitle"),
    (0x00080005, "CS", "SpecificCharacterSet"),
    (0x00080008, "CS", "ImageType"),
    (0x00080012, "DA", "InstanceCreationDate"),
    (0x00080013, "TM", "InstanceCreationTime"),
    (0x00080016, "UI", "SOPClassUID"),
    (0x00080018, "UI", "SOPInstanceUID"),
    (0x00080020, "DA", "StudyDate"),
    (0x00080021, "DA", "SeriesDate"),
    (0x00080022, "DA", "AcquisitionDate"),
    (0x00080023, "DA", "ContentDate"),
    (0x00080030, "TM", "StudyTime"),
    (0x00080031, "TM", "SeriesTime"),
    (0x00080032, "TM", "AcquisitionTime"),
    (0x00080033, "TM", "ContentTime"),
    (0x00080050, "SH", "AccessionNumber"),
    (0x00080060, "CS", "Modality"),
    (0x00080070, "LO", "Manufacturer"),
    (0x00080080, "LO", "InstitutionName"),
    (0x00080090, "PN", "ReferringPhysicianName"),
    (0x00081010, "SH", "StationName"),
    (0x00081030, "LO", "StudyDescription"),
    (0x0008103E, "LO", "SeriesDescription"),
    (0x00081040, "LO", "InstitutionalDepartmentName"),
    (0x00081070, "PN", "OperatorsName"),
    (0x00081090, "LO", "ManufacturerModelName"),
    (0x00100010, "PN", "PatientName"),
    (0x00100020, "LO", "PatientID"),
    (0x00100030, "DA", "PatientBirthDate"),
    (0x00100040, "CS", "PatientSex"),
    (0x00101000, "LO", "OtherPatientIDs"),
    (0x00101010, "AS", "PatientAge"),
    (0x00101020, "DS", "PatientSize"),
    (0x00101030, "DS", "PatientWeight"),
    (0x00180015, "CS", "BodyPartExamined"),
    (0x00180050, "DS", "SliceThickness"),
    (0x00180060, "DS", "KVP"),
    (0x00181030, "LO", "ProtocolName"),
    (0x00200010, "SH", "StudyID"),
    (0x0020000D, "UI", "StudyInstanceUID"),
    (0x0020000E, "UI", "SeriesInstanceUID"),
    (0x00200011, "IS", "SeriesNumber"),
    (0x00200012, "IS", "AcquisitionNumber"),
    (0x00200013, "IS", "InstanceNumber"),
    (0x00200032, "DS", "ImagePositionPatient"),
    (0x00200037, "DS", "ImageOrientationPatient"),
    (0x00200052, "UI", "FrameOfReferenceUID"),
    (0x00201041, "DS", "SliceLocation"),
    (0x00280002, "US", "SamplesPerPixel"),
    (0x00280004, "CS", "PhotometricInterpretation"),
    (0x00280006, "US", "PlanarConfiguration"),
    (0x00280008, "IS", "NumberOfFrames"),
    (0x00280010, "US", "Rows"),
    (0x00280011, "US", "Columns"),
    (0x00280030, "DS", "PixelSpacing"),
    (0x00280100, "US", "BitsAllocated"),
    (0x00280101, "US", "BitsStored"),
    (0x00280102, "US", "HighBit"),
    (0x00280103, "US", "PixelRepresentation"),
    (0x00281050, "DS", "WindowCenter"),
    (0x00281051, "DS", "WindowWidth"),
    (0x00281052, "DS", "RescaleIntercept"),
    (0x00281053, "DS", "RescaleSlope"),
    (0x00321032, "PN", "RequestingPhysician"),
    (0x00321060, "LO", "RequestedProcedureDescription"),
    (0x00400254, "LO", "PerformedProcedureStepDescription"),
    (0x7FE00010, "OW", "PixelData"),
)

VR_OF: Final[dict[int, str]] = {tag: vr for tag, vr, _ in _ENTRIES}
KEYWORD_OF: Final[dict[int, str]] = {tag: keyword for tag, _, keyword in _ENTRIES}
TAG_OF: Final[dict[str, int]] = {keyword: tag for tag, _, keyword in _ENTRIES}


def implicit_vr(tag: int) -> str:
    """The VR an Implicit VR element has: from the dictionary, UL for group lengths, else UN."""
    if tag & 0xFFFF == 0:
        return "UL"
    return VR_OF.get(tag, "UN")


def name(tag: int) -> str:
    """``Rows (0028,0010)`` for known tags, ``(0009,1010)`` for the others."""
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    keyword = KEYWORD_OF.get(tag)
    return f"{keyword} {text}" if keyword else text
