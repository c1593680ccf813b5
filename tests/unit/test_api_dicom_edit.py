"""Reading and fixing quarantined bytes (archive_api.dicom_edit) on files the synthetic generator
makes, broken on purpose where a test needs it."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement

from archive_api.dicom_edit import EditError, apply_fix, describe, parse_tag
from archive_tools import synthetic
from archive_tools.synthetic import PatientInfo, StudyInfo

PATIENT = PatientInfo("张^伟", "EDIT-P1", "19620418", "M")


def ct_bytes(**changes: DataElement) -> bytes:
    ds = synthetic.ct_volume(1, 16, 16, patient=PATIENT, study=StudyInfo(), seed=3)[0]
    for element in changes.values():
        ds[element.tag] = element
    return synthetic.to_bytes(ds)


def test_parse_tag_spellings() -> None:
    assert parse_tag("(0010,0020)") == parse_tag("00100020") == parse_tag("0010,0020") \
        == parse_tag("PatientID") == 0x00100020
    with pytest.raises(EditError):
        parse_tag("(0010,002)")


def test_describe_shows_names_vrs_and_text() -> None:
    tags, error = describe(ct_bytes())
    assert error is None
    by_tag = {t.tag: t for t in tags}
    assert by_tag["(0010,0010)"].value == "张^伟" and by_tag["(0010,0010)"].vr == "PN"
    assert by_tag["(0010,0010)"].keyword == "PatientName"
    assert by_tag["(0028,0010)"].value == "16" and by_tag["(0028,0010)"].vr == "US"
    assert by_tag["(7FE0,0010)"].value == f"<{16 * 16 * 2} bytes>"
    assert by_tag["(0002,0010)"].keyword == "TransferSyntaxUID"


def test_describe_never_raises() -> None:
    assert describe(b"") == ([], "no DICOM element could be read")
    tags, error = describe(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert error is None and [(t.vr, t.value) for t in tags] == [("UN", "<40 bytes>")]
    truncated = ct_bytes()[:400]
    tags, _ = describe(truncated)
    assert any(t.tag == "(0002,0010)" for t in tags)


def test_fix_sets_values_and_vrs_and_removes() -> None:
    broken = ct_bytes(rows=DataElement(0x00280010, "SS", 16))
    assert dcmread(io.BytesIO(broken))["Rows"].VR == "SS"
    fixed = apply_fix(broken, {"(0028,0010)": {"vr": "US", "value": "16"},
                               "(0010,0020)": "EDIT-P2"}, ["(0010,0030)"])
    ds = dcmread(io.BytesIO(fixed))
    assert ds["Rows"].VR == "US" and ds.Rows == 16
    assert ds.PatientID == "EDIT-P2" and "PatientBirthDate" not in ds
    assert str(ds.PatientName) == "张^伟"  # the rest is kept, Chinese name intact
    original = dcmread(io.BytesIO(broken))
    assert ds.PixelData == original.PixelData
    assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


def test_fix_refuses_what_it_cannot_do() -> None:
    data = ct_bytes()
    with pytest.raises(EditError, match="at least one"):
        apply_fix(data, {}, [])
    with pytest.raises(EditError, match="file meta"):
        apply_fix(data, {"(0002,0010)": "1.2.840.10008.1.2"}, [])
    with pytest.raises(EditError, match="not a value of VR US"):
        apply_fix(data, {"(0028,0010)": "8.5"}, [])
    with pytest.raises(EditError, match="give its VR"):
        apply_fix(data, {"(0011,1010)": "x"}, [])
    with pytest.raises(EditError, match="only text and number"):
        apply_fix(data, {"(7FE0,0010)": "x"}, [])
